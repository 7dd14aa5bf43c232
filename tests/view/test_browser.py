"""The viewer in headless Chromium (a system Chromium driven by Playwright: $REASONLOOP_CHROMIUM,
else `chromium` on the PATH, e.g. Debian's /usr/bin/chromium).

Skipped, with the reason, when either is missing. Screenshots of each page go to a temp dir, or to
``$REASONLOOP_VIEW_SCREENSHOTS`` (e.g. ``docs/screenshots``) when that is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# The Chromium `make test` found (see its chromium-check): $REASONLOOP_CHROMIUM, else on the PATH.
CHROMIUM = (
    os.environ.get("REASONLOOP_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
    or "/usr/bin/chromium"
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install one (Debian/Ubuntu: apt-get install chromium; macOS: "
        "brew install --cask chromium) or set REASONLOOP_CHROMIUM to its path",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is missing (pip install playwright)"
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory, kit):
    root = tmp_path_factory.mktemp("browser")
    store = kit.build_store(root / "pool.sqlite")
    runs = kit.build_runs(root / "runs", real_plots=True)
    v = kit.Viewer(store, runs)
    yield v
    v.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("REASONLOOP_VIEW_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    p = ctx.new_page()
    p.dialogs = []  # type: ignore[attr-defined]
    p.errors = []  # type: ignore[attr-defined]
    p.on("dialog", lambda d: (p.dialogs.append(d.message), d.dismiss()))
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    p.on("console", lambda m: m.type == "error" and p.errors.append(m.text))
    yield p
    ctx.close()


def assert_inert(page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.dialogs == []
    assert page.errors == []
    assert page.locator("img").count() == 0


def test_navigate_problem_trajectory_rel(app, page, shots):
    page.goto(app.url + "/")
    rows = page.locator("#problems tbody tr")
    assert rows.count() == 3
    assert rows.nth(1).locator("td").nth(8).inner_text() == "20.0%"
    page.screenshot(path=shots / "problems.png", full_page=True)

    page.click("#problems a:text-is('p2')")
    assert page.url == app.url + "/problem?id=p2"
    hostile = page.locator("#t-t-hostile details.thought pre")
    assert not hostile.is_visible()  # folded
    page.click("button[data-fold=open]")
    assert hostile.is_visible()
    text = hostile.inner_text()
    assert '<script>window.__pwned = 1; alert("xss")</script>' in text
    assert '<img src=x onerror="window.__pwned = 2">' in text
    assert_inert(page)
    page.screenshot(path=shots / "problem.png", full_page=True)

    page.click("#t-t-hostile a.tid")
    assert page.url == app.url + "/trajectory?id=t-hostile"
    sol = page.locator("details.solution pre").inner_text()
    assert sol.startswith("The answer is 7. <script>window.__pwned = 1;")
    assert page.locator("#extracted").inner_text() == "7"
    assert_inert(page)
    page.screenshot(path=shots / "trajectory_hostile.png", full_page=True)

    page.goto(app.url + "/trajectory?id=rel-r2")
    page.click("#rel-link")
    assert page.url == app.url + "/rel?problem=rel/p3"
    rounds = page.locator("ol.timeline li.round")
    assert rounds.count() == 3
    assert [rounds.nth(i).locator(".round-no").inner_text() for i in range(3)] == [
        "round 0",
        "round 1",
        "round 2",
    ]
    assert rounds.nth(0).locator(".badge").inner_text() == "wrong"
    assert rounds.nth(2).locator("details.critique pre").inner_text() == "Excellent."
    assert rounds.nth(1).locator("table.scores tr").nth(1).inner_text().split() == [
        "0.60",
        "0.70",
        "0.65",
    ]
    page.screenshot(path=shots / "rel_chain.png", full_page=True)


def test_compare_two_picked_trajectories(app, page, shots):
    page.goto(app.url + "/problem?id=p1")
    button = page.locator("#compare-btn")
    assert button.is_disabled()
    picks = page.locator("input.pick")
    picks.nth(0).check()
    picks.nth(1).check()
    assert button.is_enabled()
    assert picks.nth(2).is_disabled()  # at most two
    button.click()
    page.wait_for_url("**/compare?*")
    assert page.url == app.url + "/compare?id=t-p1-right&id=t-p1-wrong"
    cols = page.locator(".side-by-side section.col")
    assert cols.count() == 2
    assert "2 + 2 = 5" in cols.nth(1).locator("details.solution pre").inner_text()
    box0, box1 = cols.nth(0).bounding_box(), cols.nth(1).bounding_box()
    assert box0["y"] == box1["y"] and box0["x"] < box1["x"]  # side by side
    page.screenshot(path=shots / "compare.png", full_page=True)


def test_search_explore_and_runs(app, page, shots):
    page.goto(app.url + "/search")
    page.fill("input[name=q]", "pwned")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/search?q=pwned*")
    assert page.locator("#result-count").inner_text() == "1 match"
    assert page.locator(".snippet mark").first.inner_text() == "pwned"
    assert "<script>window.__" in page.locator(".snippet").inner_text()
    assert_inert(page)
    page.fill("input[name=q]", "try")
    page.select_option("select[name=correct]", "0")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**correct=0*")
    assert page.locator("#result-count").inner_text() == "5 matches"
    page.screenshot(path=shots / "search.png", full_page=True)

    page.goto(app.url + "/explore")
    page.click("text=solved_with_search (1)")
    rows = page.locator("#explore tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("td").first.inner_text() == "rel/p3"
    page.goto(app.url + "/explore")
    assert page.locator(".bar").first.evaluate("e => e.style.width") == "30px"
    page.screenshot(path=shots / "explore.png", full_page=True)

    page.goto(app.url + "/runs")
    assert page.locator("#compare tbody tr").count() == 2
    page.screenshot(path=shots / "runs.png", full_page=True)
    page.click("#compare a:text-is('base')")
    imgs = page.locator(".plots img")
    assert imgs.count() >= 2
    for i in range(imgs.count()):
        assert imgs.nth(i).evaluate("e => e.complete && e.naturalWidth") > 100
    page.screenshot(path=shots / "run.png", full_page=True)
    assert page.errors == []


def test_chromium_and_playwright_present():
    """Documents what the module-level skips check (it runs only when both are there)."""
    assert shutil.which(CHROMIUM) == CHROMIUM
