"""The viewer's pages through a real server on a free port (urllib), plus its pure readers."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from html.parser import HTMLParser

import pytest

from reasonloop.errors import DataError
from reasonloop.records import Generator, Trajectory
from reasonloop.store import Store
from reasonloop.view import make_server
from reasonloop.view.data import explore_rows, metric_columns, rel_chains
from reasonloop.view.search import highlight, safe_query


def get(site, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict]:
    req = urllib.request.Request(site.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8"), dict(e.headers)


class Tables(HTMLParser):
    """Cell texts of every <table id=...>, row by row (header rows included)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._id: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._id = a["id"]
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self.tables[self._id].append([])
        elif tag in ("td", "th") and self._id:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._id and self._cell is not None:
            self.tables[self._id][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    p = Tables()
    p.feed(html)
    return p.tables


def test_problems_list_counts_and_rates(site):
    status, html, headers = get(site, "/")
    assert status == 200
    rows = tables(html)["problems"]
    assert rows[0] == [
        "id", "domain", "source", "level", "problem", "trajectories", "graded", "correct",
        "correct rate", "stages",
    ]  # fmt: skip
    assert rows[1:] == [
        ["p1", "math", "toy", "1", "What is 2 + 2?", "4", "4", "2", "50.0%", "explore, sample"],
        ["p2", "math", "toy", "2", "What is 3 + 4?", "6", "5", "1", "20.0%", "explore, sample"],
        ["rel/p3", "math", "toy", "3", "What is 6 * 7?", "3", "3", "2", "66.7%", "rel"],
    ]
    assert "3 problems · 13 trajectories" in html
    assert headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self'")
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_hostile_text_is_escaped_everywhere(site):
    escaped = "&lt;script&gt;window.__pwned = 1; alert(&#34;xss&#34;)&lt;/script&gt;"
    for path in (
        "/problem?id=p2",
        "/trajectory?id=t-hostile",
        "/compare?id=t-hostile&id=t-ungraded",
        "/search?q=pwned",
        "/search?problem=p2",
    ):
        status, html, _ = get(site, path)
        assert status == 200, path
        assert "<script>window" not in html, path
        assert "<img src=x" not in html, path
        if path == "/search?q=pwned":  # the snippet marks the match
            assert "&lt;script&gt;window.__<mark>pwned</mark> = 1;" in html
        elif path != "/search?problem=p2":  # the listing shows only the start of the text
            assert escaped in html, path
            assert "&lt;img src=x onerror=&#34;window.__pwned = 2&#34;&gt;" in html, path
    # The only script tag on any page is the app's own file.
    _, html, _ = get(site, "/trajectory?id=t-hostile")
    assert html.count("<script") == 1
    assert '<script src="/static/view.js" defer></script>' in html


def test_problem_page_shows_every_trajectory_with_facts(site):
    status, html, _ = get(site, "/problem?id=p1")
    assert status == 200
    assert '<code id="gold">4</code>' in html
    assert html.count('<article class="traj"') == 4
    assert "4 in stage" not in html and "2 of 4 graded correct" in html
    # thought and solution are folded separately
    assert html.count('<details class="fold thought">') == 4
    assert html.count('<details class="fold solution">') == 4
    status, html, _ = get(site, "/problem?id=p1&stage=sample")
    assert html.count('<article class="traj"') == 2
    assert "1 of 2 graded correct" in html
    # behaviour counts of t-p1-right: "Alternatively" 1, "Let me check" 1, "First," 1
    assert tables(html)["facts-t-p1-right"] == [
        ["extracted", "tokens", "perplexity", "finish", "switch", "verify", "backtrack", "plan",
         "thought words", "generator"],
        ["4", "30", "1.25", "–", "1", "1", "0", "1", "17", "sample · scripted · tiny · round 0 · T=0.7"],
    ]  # fmt: skip


def test_trajectory_page_links_parent_children_scores(site):
    status, html, _ = get(site, "/trajectory?id=rel-r1")
    assert status == 200
    assert '<a href="/trajectory?id=rel-r0" id="parent">rel-r0</a>' in html
    assert '<a href="/trajectory?id=rel-r2">rel-r2</a>' in html
    assert 'id="rel-link"' in html and "Better plan." in html
    _, html, _ = get(site, "/trajectory?id=t-p1-wrong")
    assert "ppl:round1 = 2.2500" in html
    assert '<code id="extracted">5</code>' in html
    assert 'id="rel-link"' not in html


def test_rel_chain_timeline(site):
    _, html, _ = get(site, "/rel")
    assert '<a href="/rel?problem=rel/p3">rel/p3</a>' in html
    status, html, _ = get(site, "/rel?problem=rel%2Fp3")
    assert status == 200
    assert "Chain 1" in html and "Chain 2" not in html
    order = [html.index(f'id="r-rel-r{i}"') for i in range(3)]
    assert order == sorted(order)
    assert '← from <a href="#r-rel-r0">rel-r0</a>' in html
    for critique in ("Arithmetic slip.", "Better plan.", "Excellent."):
        assert critique in html
    assert "<td>0.40</td><td>0.50</td><td>0.45</td>" in html  # planning, reasoning, mean


def test_explore_page_and_bucket_filter(site):
    status, html, _ = get(site, "/explore")
    assert status == 200
    rows = tables(html)["explore"]
    assert rows[1:] == [
        ["p1", "2", "1", "1", "50.0%", "solved_at_once"],
        ["p2", "4", "0", "–", "0.0%", "unsolved"],
        ["rel/p3", "8", "2", "5", "25.0%", "solved_with_search"],
    ]
    assert (
        "3 problems · 2 solved · 14 attempts · pooled pass rate 21.4% · mean pass rate 25.0%"
        in html
    )
    _, html, _ = get(site, "/explore?bucket=unsolved")
    assert [r[0] for r in tables(html)["explore"][1:]] == ["p2"]
    assert "unsolved (1)" in html and "solved_at_once (1)" in html


def test_runs_compare_metrics_and_plots(site):
    status, html, _ = get(site, "/runs")
    assert status == 200
    t = tables(html)
    assert t["compare"][1:] == [
        ["", "base", "base", "toy", "greedy", "3", "50.0", "60.0 (maj@4)", "120", "+0.0"],
        ["", "round1/eval", "round1", "toy", "greedy", "3", "62.5", "70.0 (maj@4)", "150", "+12.5"],
    ]
    assert t["metrics"] == [
        ["run", "maj@4", "pass@1", "pass@4"],
        ["base", "60.0%", "50.0%", "75.0%"],
        ["round1/eval", "70.0%", "62.5%", "–"],
    ]
    assert "broken" in html and "invalid JSON" in html
    _, html, _ = get(site, "/runs?pick=round1%2Feval")
    assert [r[1] for r in tables(html)["compare"][1:]] == ["round1/eval"]
    _, html, _ = get(site, "/runs?run=base")
    assert tables(html)["run-metrics"][1:] == [
        ["maj@4", "60.0%"], ["pass@1", "50.0%"], ["pass@4", "75.0%"]
    ]  # fmt: skip
    assert '<img src="/runs/file?run=base&amp;file=accuracy_vs_k.png"' in html
    assert "# base &lt;b&gt;report&lt;/b&gt;" in html
    req = urllib.request.urlopen(site.url + "/runs/file?run=base&file=accuracy_vs_k.png")
    assert req.headers["Content-Type"] == "image/png"
    assert req.read().startswith(b"\x89PNG")
    for bad in ("run=base&file=../secret.png", "run=..&file=secret.png", "run=&file=secret.png"):
        assert get(site, "/runs/file?" + bad)[0] == 404


def test_search_full_text_and_filters(site):
    status, html, _ = get(site, "/search?q=zebra")
    assert status == 200
    assert "1 match" in html and "t-p1-wrong" in html
    assert "<mark>zebra</mark>" in html
    _, html, _ = get(site, "/search?q=plan")  # the critique is indexed too
    assert "rel-r1" in html
    _, html, _ = get(site, "/search?q=try&stage=explore&correct=1")
    assert "1 match" in html and "x-p1-0" in html
    _, html, _ = get(site, "/search?q=try&problem=p2")
    assert "4 matches" in html
    # invalid FTS5 syntax falls back to plain words instead of failing
    status, html, _ = get(site, "/search?q=%22zebra&stage=sample")
    assert status == 200 and "1 match" in html
    # filters alone list trajectories
    _, html, _ = get(site, "/search?stage=sample&correct=none")
    assert [r[1] for r in tables(html)["listed"][1:]] == ["t-ungraded"]
    _, html, _ = get(site, "/search?stage=rel&correct=0")
    assert [r[1] for r in tables(html)["listed"][1:]] == ["rel-r0"]


def test_compare_side_by_side(site):
    status, html, _ = get(site, "/compare?id=t-p1-right&id=t-p1-wrong")
    assert status == 200
    assert html.count('<section class="col">') == 2
    assert html.index("t-p1-right") < html.index("t-p1-wrong")
    status, html, _ = get(site, "/compare?id=t-p1-right")
    assert status == 400 and "pick two trajectories" in html


def test_not_found_and_bad_requests(site):
    status, html, _ = get(site, "/trajectory?id=%3Cscript%3Ex")
    assert status == 404 and "no trajectory &#39;&lt;script&gt;x&#39;" in html
    assert get(site, "/nope")[0] == 404
    assert get(site, "/problem?id=missing")[0] == 404
    assert get(site, "/rel?problem=p1")[0] == 404
    assert get(site, "/static/..%2Fapp.py")[0] == 404
    status, body, headers = get(site, "/static/view.css")
    assert status == 200 and headers["Content-Type"] == "text/css; charset=utf-8"
    # DNS rebinding: a foreign Host header is refused while bound to loopback
    status, body, _ = get(site, "/", headers={"Host": "evil.example:8765"})
    assert status == 403
    req = urllib.request.Request(site.url + "/", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 501


def test_missing_store_or_runs_dir_is_a_clear_error(tmp_path, kit):
    with pytest.raises(DataError, match="no reasonloop store there"):
        make_server(tmp_path / "none.sqlite", None, "127.0.0.1", 0)
    store = kit.build_store(tmp_path / "s.sqlite")
    with pytest.raises(DataError, match="--runs is not a directory"):
        make_server(store, tmp_path / "nope", "127.0.0.1", 0)


def test_store_is_never_written_and_search_sees_new_rows(tmp_path, kit):
    store = kit.build_store(tmp_path / "pool.sqlite")
    digest = hashlib.sha256(store.read_bytes()).hexdigest()
    v = kit.Viewer(store, None)
    try:
        for path in ("/", "/problem?id=p1", "/search?q=zebra", "/rel?problem=rel%2Fp3"):
            assert get(v, path)[0] == 200
        assert hashlib.sha256(store.read_bytes()).hexdigest() == digest
        # a job writes while the viewer runs: the next search indexes only the new row
        with Store(store) as w:
            w.add_trajectories(
                [Trajectory("p1", kit.fmt("A quokka appears.", "\\boxed{4}"), id="t-new")],
                stage="late",
            )
            status, html, _ = get(v, "/search?q=quokka")
            assert status == 200 and "t-new" in html
            assert v.server.app.index.last_seq == 14
            assert len(v.server.app.index) == 14
            status, html, _ = get(v, "/")
            assert "14 trajectories" in html
    finally:
        v.close()


# --- pure readers ----------------------------------------------------------------------------------


def _round(tid: str, parent: str | None, r: int) -> Trajectory:
    role = "rel-generator" if parent is None else "rel-revision"
    return Trajectory(
        "p", "x", id=tid, parent=parent, generator=Generator("e", "m", round=r, role=role)
    )


def test_rel_chains_split_by_parent_links_and_forks():
    rounds = [
        _round("a0", None, 0),
        _round("a1", "a0", 1),
        _round("b0", None, 0),
        _round("a2", "a1", 2),
        _round("a1x", "a0", 1),  # a fork: a second revision of a0
        Trajectory("p", "not rel", id="s", generator=Generator("e", "m")),
        _round("c1", "c2", 1),  # a parent cycle
        _round("c2", "c1", 2),
    ]
    chains = [[t.id for t in c] for c in rel_chains(rounds)]
    assert chains == [["a0", "a1", "a2"], ["b0"], ["a1x"], ["c1"], ["c2"]]


def test_explore_rows_read_records_and_flag_malformed():
    rows = explore_rows(
        {
            "b": {"attempts": 4, "correct": 1, "first_correct": 3, "bucket": "solved_with_search"},
            "a": None,
            "c": {"attempts": "4", "correct": 0, "first_correct": None, "bucket": "unsolved"},
        }
    )
    assert [(r.problem_id, r.pass_rate, r.bucket, r.error) for r in rows] == [
        ("a", 0.0, "", "expected an object, got None"),
        ("b", 0.25, "solved_with_search", None),
        ("c", 0.0, "", "attempts/correct not integers: '4', 0"),
    ]


def test_metric_columns_and_search_helpers(kit):
    from reasonloop.records import EvalResult

    a = EvalResult("b", "m", "s", 1, metrics={"maj@16": 0.1, "acc": 0.2, "pass@1": 0.3})
    b = EvalResult("b", "m", "s", 1, metrics={"maj@4": 0.1, "pass@10": 0.2, "pass@2": 0.3})
    assert metric_columns([a, b]) == ["maj@4", "maj@16", "pass@1", "pass@2", "pass@10", "acc"]
    assert safe_query('"foo bar- x"y') == '"""foo" "bar-" "x""y"'
    assert str(highlight("a <b> \x02hit\x03")) == "a &lt;b&gt; <mark>hit</mark>"
    assert kit.HOSTILE.startswith("<script>")
