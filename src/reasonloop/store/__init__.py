"""The trajectory store: an embedded, append-only, deduplicated SQLite pool of problems and
trajectories that outlives runs (:mod:`reasonloop.store.db`), and its exports to JSONL / parquet /
HF datasets in the shapes TRL reads (:mod:`reasonloop.store.export`)."""

from __future__ import annotations

from reasonloop.store.db import (
    SCHEMA_VERSION,
    Added,
    StageStats,
    Store,
    StoredTrajectory,
    StoreStats,
    open_store,
    settings_key,
    trajectory_key,
)
from reasonloop.store.export import (
    export_jsonl,
    export_parquet,
    preference_rows,
    rows,
    sft_rows,
    to_hf_dataset,
    trajectory_rows,
)

__all__ = [
    "SCHEMA_VERSION",
    "Added",
    "StageStats",
    "Store",
    "StoreStats",
    "StoredTrajectory",
    "export_jsonl",
    "export_parquet",
    "open_store",
    "preference_rows",
    "rows",
    "settings_key",
    "sft_rows",
    "to_hf_dataset",
    "trajectory_key",
    "trajectory_rows",
]
