"""A local web viewer of a trajectory store and eval runs (``reasonloop view``); see
:mod:`reasonloop.view.app`. Needs jinja2 (and its markupsafe)."""

from __future__ import annotations

from reasonloop.view.app import ViewApp, make_server, serve

__all__ = ["ViewApp", "make_server", "serve"]
