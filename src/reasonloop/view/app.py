"""``reasonloop view``: a small local web viewer of a trajectory store and eval runs.

Server-rendered pages (stdlib :class:`~http.server.ThreadingHTTPServer` + Jinja2 with autoescaping
on, so every model-generated string is shown as text), a little vanilla JS for folding and
side-by-side comparison, no assets from the network. Each request opens the store read-only
(``mode=ro``) and closes it, so the viewer always shows what a running job has committed and never
writes the store; full-text search uses a private FTS5 index (:mod:`reasonloop.view.search`).

What it is not: multi-user, authenticated or meant to face a network — it binds 127.0.0.1 by
default, answers only GET/HEAD, rejects foreign ``Host`` headers while bound to loopback (DNS
rebinding) and sends a strict Content-Security-Policy.
"""

from __future__ import annotations

import itertools
import logging
import mimetypes
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reasonloop.curate.behaviours import count_behaviours
from reasonloop.errors import DataError
from reasonloop.evaluate.report import compare_table
from reasonloop.store import Store
from reasonloop.view import data
from reasonloop.view.search import SearchIndex

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC = HERE / "static"
PAGE_SIZE = 200
SEARCH_LIMIT = 200
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_SAFE_FILE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class NotFound(Exception):
    """A page, record or file that does not exist; the message is shown (escaped) to the user."""


def _one(query: dict[str, list[str]], name: str, default: str = "") -> str:
    values = query.get(name)
    return values[0] if values else default


def _correct_filter(value: str) -> bool | None | str:
    return {"1": True, "0": False, "none": None}.get(value, "any")


class ViewApp:
    """The viewer's pages as a function of (path, query): :meth:`handle` returns a Response.

    ``store_path`` must be an existing store (checked here: DataError otherwise); ``runs_dir`` an
    optional directory of eval output directories.
    """

    def __init__(self, store_path: str | Path, runs_dir: str | Path | None = None):
        from jinja2 import Environment, FileSystemLoader, StrictUndefined

        self.store_path = Path(store_path)
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None
        if self.runs_dir is not None and not self.runs_dir.is_dir():
            raise DataError(f"{self.runs_dir}: --runs is not a directory")
        with self._store():  # fail now, not on the first request
            pass
        self.index = SearchIndex()
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.1f}%"
        self.env.filters["num"] = lambda x, d=2: "–" if x is None else f"{x:.{d}f}"
        self.env.globals["mean_score"] = data.mean_score
        self.routes: dict[str, Callable[[dict[str, list[str]]], Response]] = {
            "/": self.problems_page,
            "/problem": self.problem_page,
            "/trajectory": self.trajectory_page,
            "/compare": self.compare_page,
            "/rel": self.rel_page,
            "/explore": self.explore_page,
            "/runs": self.runs_page,
            "/runs/file": self.run_file,
            "/search": self.search_page,
        }

    def _store(self) -> Store:
        return Store(self.store_path, create=False, readonly=True)

    # plumbing ------------------------------------------------------------------------------------

    def handle(self, path: str, query_string: str = "") -> Response:
        """The response to a GET of ``path?query_string``; never raises on bad input."""
        query = parse_qs(query_string, keep_blank_values=True)
        try:
            if path == "/favicon.ico":  # browsers ask; an empty answer keeps their console clean
                return Response(204, b"", "image/x-icon")
            if path.startswith("/static/"):
                return self.static_file(path.removeprefix("/static/"))
            route = self.routes.get(path.rstrip("/") or "/")
            if route is None:
                raise NotFound(f"no page {path}")
            return route(query)
        except NotFound as exc:
            return self.render("error.html", status=404, title="Not found", message=str(exc))
        except Exception as exc:  # a viewer shows the error page rather than dropping the socket
            log.exception("error serving %s", path)
            return self.render(
                "error.html", status=500, title="Error", message=f"{type(exc).__name__}: {exc}"
            )

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("store_path", str(self.store_path))
        html = self.env.get_template(template).render(**context)
        return Response(status, html.encode("utf-8"))

    def static_file(self, name: str) -> Response:
        path = STATIC / name
        if not _SAFE_FILE.match(name) or not path.is_file():
            raise NotFound(f"no static file {name}")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        return Response(200, path.read_bytes(), ctype)

    # pages ---------------------------------------------------------------------------------------

    def problems_page(self, query: dict[str, list[str]]) -> Response:
        with self._store() as store:
            rows = data.problem_rows(store)
            stats = store.stats()
            has_rel = bool(data.rel_problem_ids(store))
            progress = data.progress_stages(store)
        try:
            page = max(1, int(_one(query, "page", "1")))
        except ValueError:
            page = 1
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return self.render(
            "problems.html",
            title="Problems",
            rows=shown,
            total=len(rows),
            page=page,
            pages=pages,
            stats=stats,
            has_rel=has_rel,
            progress=progress,
        )

    def problem_page(self, query: dict[str, list[str]]) -> Response:
        pid = _one(query, "id")
        stage = _one(query, "stage") or None
        with self._store() as store:
            problem = store.get_problem(pid)
            stored = list(store.stored(problem_id=pid, stage=stage))
            stages = sorted({s.stage for s in store.stored(problem_id=pid)})
            has_rel = any(pid == p for p, _ in data.rel_problem_ids(store))
        if problem is None and not stored and not stages:
            raise NotFound(f"no problem {pid!r} in the store")
        items = [(s, count_behaviours(s.trajectory.text)) for s in stored]
        graded = [s for s in stored if s.trajectory.verdict is not None]
        n_correct = sum(1 for s in graded if s.trajectory.verdict.correct)  # type: ignore[union-attr]
        return self.render(
            "problem.html",
            title=f"Problem {pid}",
            pid=pid,
            problem=problem,
            items=items,
            stage=stage,
            stages=stages,
            graded=len(graded),
            n_correct=n_correct,
            has_rel=has_rel,
        )

    def trajectory_page(self, query: dict[str, list[str]]) -> Response:
        tid = _one(query, "id")
        with self._store() as store:
            found = self._stored(store, tid)
            problem = store.get_problem(found.trajectory.problem_id)
            scores = store.scores_of(tid)
            children = data.children_of(store, tid)
        t = found.trajectory
        return self.render(
            "trajectory.html",
            title=f"Trajectory {tid}",
            s=found,
            t=t,
            problem=problem,
            scores=scores,
            children=children,
            behaviours=count_behaviours(t.text).as_dict(),
            is_rel=bool(t.generator and t.generator.role in data.REL_ROLES),
        )

    @staticmethod
    def _stored(store: Store, tid: str):
        row = store.conn.execute("SELECT problem_id FROM trajectories WHERE id = ?", (tid,))
        hit = row.fetchone()
        if hit is None:
            raise NotFound(f"no trajectory {tid!r} in the store")
        for s in store.stored(problem_id=hit[0]):
            if s.trajectory.id == tid:
                return s
        raise NotFound(f"no trajectory {tid!r} in the store")

    def compare_page(self, query: dict[str, list[str]]) -> Response:
        ids = [i for i in query.get("id", []) if i][:2]
        if len(ids) != 2:
            return self.render(
                "error.html",
                status=400,
                title="Compare",
                message="pick two trajectories to compare (compare?id=A&id=B)",
            )
        with self._store() as store:
            pair = [self._stored(store, i) for i in ids]
            problems = {
                s.trajectory.problem_id: store.get_problem(s.trajectory.problem_id) for s in pair
            }
        return self.render(
            "compare.html",
            title="Compare",
            pair=[(s, count_behaviours(s.trajectory.text).as_dict()) for s in pair],
            problems=problems,
        )

    def rel_page(self, query: dict[str, list[str]]) -> Response:
        pid = _one(query, "problem")
        with self._store() as store:
            listing = data.rel_problem_ids(store)
            if not pid:
                return self.render("rel_index.html", title="REL chains", listing=listing)
            problem = store.get_problem(pid)
            rounds = [
                t for role in data.REL_ROLES for t in store.trajectories(problem_id=pid, role=role)
            ]
        if not rounds:
            raise NotFound(f"no REL rounds for problem {pid!r}")
        order = {t.id: i for i, t in enumerate(sorted(rounds, key=_round_key))}
        chains = data.rel_chains(sorted(rounds, key=lambda t: order[t.id]))
        return self.render(
            "rel.html", title=f"REL chain {pid}", pid=pid, problem=problem, chains=chains
        )

    def explore_page(self, query: dict[str, list[str]]) -> Response:
        stage = _one(query, "stage", "explore")
        bucket = _one(query, "bucket")
        with self._store() as store:
            rows = data.explore_rows(store.done(stage))
            stages = data.progress_stages(store)
        good = [r for r in rows if r.error is None]
        buckets = Counter(r.bucket for r in good)
        shown = [r for r in rows if not bucket or r.bucket == bucket]
        attempts = sum(r.attempts for r in good)
        summary = {
            "problems": len(good),
            "solved": sum(1 for r in good if r.first_correct is not None),
            "attempts": attempts,
            "pass_rate": (sum(r.correct for r in good) / attempts) if attempts else None,
            "mean_pass_rate": (sum(r.pass_rate for r in good) / len(good)) if good else None,
        }
        return self.render(
            "explore.html",
            title="Explore",
            stage=stage,
            stages=stages,
            bucket=bucket,
            buckets=sorted(buckets.items()),
            rows=shown,
            summary=summary,
        )

    def runs_page(self, query: dict[str, list[str]]) -> Response:
        runs = data.find_runs(self.runs_dir)
        name = _one(query, "run")
        if name:
            run = next((r for r in runs if r.name == name), None)
            if run is None:
                raise NotFound(f"no eval run {name!r} under {self.runs_dir}")
            cols = data.metric_columns([run.result] if run.result else [])
            breakdown_cols = sorted(
                {k for m in (run.result.breakdown.values() if run.result else []) for k in m}
                - {"n"}
            )
            return self.render(
                "run.html", title=f"Eval {name}", run=run, cols=cols, bcols=breakdown_cols
            )
        picked = set(query.get("pick", []))
        ok = [r for r in runs if r.result is not None and (not picked or r.name in picked)]
        header, rows = compare_table([r.result for r in ok]) if ok else ([], [])  # type: ignore[misc]
        return self.render(
            "runs.html",
            title="Eval runs",
            runs_dir=str(self.runs_dir) if self.runs_dir else None,
            runs=runs,
            ok=ok,
            picked=picked,
            header=header,
            table=list(zip(ok, rows, strict=True)),
            cols=data.metric_columns(r.result for r in ok),  # type: ignore[misc]
        )

    def run_file(self, query: dict[str, list[str]]) -> Response:
        name, file = _one(query, "run"), _one(query, "file")
        run = next((r for r in data.find_runs(self.runs_dir) if r.name == name), None)
        # Only a PNG that find_runs listed in that run's directory: no path from the URL is opened.
        if run is None or file not in run.plots or not _SAFE_FILE.match(file):
            raise NotFound(f"no plot {file!r} in run {name!r}")
        return Response(200, (run.path / file).read_bytes(), "image/png")

    def search_page(self, query: dict[str, list[str]]) -> Response:
        q = _one(query, "q")
        stage = _one(query, "stage")
        correct = _one(query, "correct")
        pid = _one(query, "problem")
        cf = _correct_filter(correct)
        with self._store() as store:
            self.index.refresh(store)
            stages = [s.stage for s in store.stats().stages]
            if q.strip():
                hits = self.index.search(
                    q, stage=stage or None, correct=cf, problem_id=pid or None, limit=SEARCH_LIMIT
                )
                listed = []
            else:
                hits = []
                it = store.stored(
                    problem_id=pid or None,
                    stage=stage or None,
                    correct=cf if isinstance(cf, bool) else None,
                )
                if cf is None:  # ungraded only: the store's filter has no such value
                    it = (s for s in it if s.trajectory.verdict is None)
                listed = list(itertools.islice(it, SEARCH_LIMIT))
        return self.render(
            "search.html",
            title="Search",
            q=q,
            stage=stage,
            correct=correct,
            problem=pid,
            stages=stages,
            hits=hits,
            listed=listed,
            limit=SEARCH_LIMIT,
            indexed=self.index.last_seq,
        )


def _round_key(t) -> tuple[int, str]:
    return (t.generator.round if t.generator else 0, t.id or "")


# --- HTTP -----------------------------------------------------------------------------------------


def _handler(app: ViewApp, host: str) -> type[BaseHTTPRequestHandler]:
    loopback = host in _LOOPBACK

    class Handler(BaseHTTPRequestHandler):
        server_version = "reasonloop-view"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self._serve(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(send_body=False)

        def _serve(self, *, send_body: bool) -> None:
            if loopback and not self._host_ok():
                resp = Response(
                    403, b"forbidden: unexpected Host header", "text/plain; charset=utf-8"
                )
            else:
                url = urlsplit(self.path)
                resp = app.handle(url.path, url.query)
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            for k, v in {**SECURITY_HEADERS, **resp.headers}.items():
                self.send_header(k, v)
            self.end_headers()
            if send_body:
                self.wfile.write(resp.body)

        def _host_ok(self) -> bool:
            raw = self.headers.get("Host", "")
            name = raw.rsplit(":", 1)[0] if not raw.endswith("]") else raw
            return name.strip("[]").lower() in _LOOPBACK

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("%s " + format, self.address_string(), *args)

    return Handler


def make_server(
    store_path: str | Path,
    runs_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
) -> ThreadingHTTPServer:
    """A bound, not yet serving, viewer server (``port=0`` picks a free port: see
    ``server.server_address``). Raises DataError when the store or runs dir is missing."""
    app = ViewApp(store_path, runs_dir)
    server = ThreadingHTTPServer((host, port), _handler(app, host))
    server.daemon_threads = True
    server.app = app  # type: ignore[attr-defined]
    return server


def serve(*args: Any, **kwargs: Any) -> None:
    """Serve the viewer made by :func:`make_server` (the same arguments) until interrupted
    (Ctrl-C). Logs the URL at INFO."""
    server = make_server(*args, **kwargs)
    h, p = server.server_address[:2]
    log.info("reasonloop view: http://%s:%d/ (store %s, read-only)", h, p, server.app.store_path)  # type: ignore[attr-defined]
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.app.index.close()  # type: ignore[attr-defined]
