"""The dashboard in a real browser: Debian's Chromium driven by Playwright against the app
`promstack serve` runs, on a free 127.0.0.1 port, over a store filled through the fake model
server (tests/test_dashboard_fixtures.py). Screenshots of each page go to build/screenshots/dashboard-*.png (or to
PROMSTACK_SCREENSHOTS; `make screenshots` refreshes docs/screenshots/). Without Chromium or Playwright these tests skip and say why;
`make test` installs both."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_dashboard_fixtures import (
    CALLS_PER_HOUR,
    LATENCY_THRESHOLD_MS,
    V1,
    fill_workspace,
    gated_llm,
    serve,
)

from store.errors import InvalidInput

CHROMIUM = os.environ.get("PROMSTACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]  # containers often have a tiny /dev/shm
# `make screenshots` refreshes the committed ones in docs/screenshots/; a plain test run writes
# them under build/ so that `make test` leaves the work tree as it found it.
SHOTS = Path(os.environ.get("PROMSTACK_SCREENSHOTS") or Path(__file__).parent.parent / "build" / "screenshots")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(base URL, facts, fake model server) for a served, filled workspace."""
    from promstack.web.app import create_app

    fake = gated_llm().start()
    root = tmp_path_factory.mktemp("dashboard")
    try:
        facts = fill_workspace(root, fake)
        with serve(create_app(facts["db"])) as url:
            yield url, facts, fake
    finally:
        fake.gate.set()
        fake.stop()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed: pip install -e '.[dev]' (make test does)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium.sh (make test does), "
                    "or set PROMSTACK_CHROMIUM")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A page whose console errors and uncaught exceptions fail the test."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="ko-KR")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    tab.errors = errors
    yield tab
    context.close()
    assert errors == [], errors


def _client(facts):
    from promstack import Client

    return Client(facts["db"])


def test_every_page_loads_without_console_errors(site, page):
    url, facts, _ = site
    good, bad = facts["runs"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "prompts": ("/prompts", "h1", "Prompts"),
        "prompt-history": ("/prompts/42", "#timeline", "experiment"),
        "diff": ("/prompts/42/diff?a=1&b=2", "#diff", "예시"),
        "runs": ("/runs", "#runs-table", good),
        "run-cases": (f"/runs/{bad}", "#cases-table", "openai/bad"),
        "runs-compare": (f"/runs/compare?a={good}&b={bad}", "#compare-table", "broke"),
        "arena": (f"/arena/{facts['arena']}", "#leaderboard", "openai/q3"),
        "monitoring": ("/monitoring", "#chart-latency", "Latency"),
        "live": (f"/runs/{good}/live", "#live", "done"),
    }
    for name, (path, selector, expected) in pages.items():
        response = page.goto(url + path, wait_until="networkidle")
        assert response.status == 200, (path, response.status)
        assert expected in page.inner_text(selector), (path, expected)
        if name == "monitoring":
            page.wait_for_selector("body[data-charts=ready]")
        if name == "run-cases":  # open the first failing case, as a person would
            page.click("#cases-table tr.case:has(.status-fail)")
        if name != "live":  # the live view is pictured while a run is in progress (below)
            page.screenshot(path=str(SHOTS / f"dashboard-{name}.png"), full_page=True)
    assert page.errors == []


def test_search_filters_the_prompt_list(site, page):
    url, _, _ = site
    page.goto(url + "/prompts")
    page.fill("input[name=q]", "refund")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/prompts?q=refund")
    names = page.locator("#prompt-list tbody td:nth-child(2) a").all_inner_texts()
    assert names == ["support/refund"]


def test_the_diff_shows_the_changed_words(site, page):
    url, facts, _ = site
    page.goto(url + "/prompts/42")
    page.check("#timeline li[data-version='1'] input[name=a]")
    page.check("#timeline li[data-version='2'] input[name=b]")
    page.click("#compare-form button[type=submit]")
    page.wait_for_url("**/prompts/42/diff?*")
    assert "a=1" in page.url and "b=2" in page.url
    inserted = page.locator("#diff-right ins").all_inner_texts()
    deleted = page.locator("#diff-left del").all_inner_texts()
    with _client(facts) as client:
        words = client.diff(42, 1, 2).words
    assert inserted == [t for op, t in words if op == 1]
    assert deleted == [t for op, t in words if op == -1]
    assert any("예시" in t for t in inserted) and any("친절하고" in t for t in deleted)
    # Unchanged text is shown on both sides, unmarked.
    assert "질문: {{ input }}" in page.inner_text("#diff-left")
    assert "질문: {{ input }}" in page.inner_text("#diff-right")


def test_a_roll_back_from_the_page_creates_the_version(site, page):
    url, facts, _ = site
    with _client(facts) as client:
        before = client.get_prompt(42)
    page.goto(url + "/prompts/42")
    page.select_option("#rollback-form select[name=version]", "1")
    page.click("#rollback-form button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert f"new version v{before.version + 1}" in page.inner_text(".flash.ok")
    with _client(facts) as client:
        head = client.get_prompt(42)
        assert head.version == before.version + 1
        assert head.source == "rollback" and head.template == V1 and head.branch == "main"
        assert any(e.get("version") == head.version for e in client.audit_log(42, limit=5))
    assert page.locator("#timeline li").first.get_attribute("data-version") == str(head.version)


def test_a_refused_action_says_why_and_changes_nothing(site, page):
    url, facts, _ = site
    with _client(facts) as client:
        if client.get_prompt(42).sha256 != client.get_prompt(42, version=1).sha256:
            client.rollback(42, 1)  # the head now has v1's content: rolling back to v1 is a no-op
        head = client.get_prompt(42)
    page.goto(url + "/prompts/42")
    page.fill("#label-form input[name=label]", "no spaces allowed")
    page.click("#label-form button[type=submit]")
    page.wait_for_selector(".flash.error")
    assert "label" in page.inner_text(".flash.error")
    page.select_option("#rollback-form select[name=version]", "1")
    page.click("#rollback-form button[type=submit]")
    page.wait_for_selector(".flash.error")
    assert "nothing to roll back" in page.inner_text(".flash.error")
    with _client(facts) as client:
        assert client.get_prompt(42).version == head.version
        assert "no spaces allowed" not in client.labels(42)


def test_a_label_set_from_the_page_moves_it(site, page):
    url, facts, _ = site
    page.goto(url + "/prompts/42")
    page.fill("#label-form input[name=label]", "test")
    page.select_option("#label-form select[name=version]", "3")
    page.fill("#label-form input[name=reason]", "from the browser test")
    page.click("#label-form button[type=submit]")
    page.wait_for_selector(".flash.ok")
    with _client(facts) as client:
        assert client.labels(42)["test"] == 3
        assert client.label_history(42, "test")[0].reason == "from the browser test"


def test_a_deploy_from_the_page_moves_the_environments_label(site, page):
    url, facts, _ = site
    page.goto(url + "/prompts/42")
    page.select_option("#deploy-form select[name=version]", "2")
    page.select_option("#deploy-form select[name=environment]", "development")
    page.click("#deploy-form button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert "Deployed support/answer v2 to development" in page.inner_text(".flash.ok")
    with _client(facts) as client:
        assert client.labels(42)["development"] == 2


def test_a_chart_has_a_point_per_hour_and_the_alert_threshold(site, page):
    url, facts, _ = site
    page.goto(url + "/monitoring?since=24h", wait_until="networkidle")
    page.wait_for_selector("body[data-charts=ready]")
    requests = page.evaluate("Array.from(window.promstackCharts.requests.data[1])")
    xs = page.evaluate("Array.from(window.promstackCharts.requests.data[0])")
    now = datetime.now(UTC)
    start = (now - timedelta(hours=24)).replace(minute=0, second=0, microsecond=0)
    hours = 0
    while start + timedelta(hours=hours) < now:
        hours += 1
    assert len(xs) == len(requests) == hours  # one point per hour of the window, empty ones too
    from promstack import monitoring

    with _client(facts) as client:
        total = monitoring.metrics(client.store.db, since="24h")["groups"][0]["requests"]
    assert sum(requests) == total  # the app's calls and the runs' calls (judge and arena included)
    with _client(facts) as client:  # the hours that hold a call, read straight from the log
        since = (now - timedelta(hours=24)).isoformat().replace("+00:00", "Z")
        busy = {r[0][:13] for r in client.store.db.execute("SELECT timestamp FROM calls WHERE timestamp >= ?",
                                                            [since]).fetchall()}
    assert sum(1 for n in requests if n) == len(busy) >= len(CALLS_PER_HOUR)
    latency = page.evaluate("window.promstackCharts.latency.data.map(a => Array.from(a))")
    assert len(latency) == 4 and set(latency[3]) == {LATENCY_THRESHOLD_MS}  # p50, p95, the alert line
    assert page.locator("#alert-history tbody tr").count() >= 1
    assert page.locator("#gauges .gauge").count() >= 3


def test_filters_narrow_the_charts(site, page):
    url, facts, _ = site
    page.goto(url + "/monitoring?since=24h&environment=staging", wait_until="networkidle")
    page.wait_for_selector("body[data-charts=ready]")
    staging = sum(page.evaluate("Array.from(window.promstackCharts.requests.data[1])"))
    from promstack import monitoring

    with _client(facts) as client:
        expected = monitoring.metrics(client.store.db, since="24h", environment="staging")["groups"][0]["requests"]
    assert 0 < staging == expected < sum(CALLS_PER_HOUR.values())  # the runs' calls are in 'development'


def test_a_failing_case_opens_and_the_table_sorts_and_filters(site, page):
    url, facts, _ = site
    bad = facts["runs"][1]
    page.goto(url + f"/runs/{bad}")
    first_fail = page.locator("#cases-table tr.case:has(.status-fail)").first
    case_id = first_fail.get_attribute("data-case")
    detail = page.locator(f"#cases-table tr.detail[data-detail='{case_id}']")
    assert detail.is_hidden()
    first_fail.click()
    assert detail.is_visible()
    text = detail.inner_text()
    assert "bad answer" in text and "FAIL" in text and "Off target." in text  # output, check, judge reason
    assert "응답이 질문에 적절한가?" in text  # the seed's criteria, each with its score
    page.fill("#case-filter", "환불")
    assert page.inner_text("#case-count") == "1 shown"
    page.fill("#case-filter", "")
    page.click("#cases-table th:has-text('#')")
    page.click("#cases-table th:has-text('#')")
    order = page.locator("#cases-table tr.case td:first-child").all_inner_texts()
    assert order == sorted(order, key=int, reverse=True)


def test_a_run_started_from_the_page_updates_live(site, page):
    from playwright.sync_api import expect

    url, facts, fake = site
    fake.gate.clear()  # the model answers nothing until the page shows the run in progress
    try:
        page.goto(url + "/prompts/42")
        page.select_option("#test-form select[name=suite]", "regression")
        # v1 was never run: no answer can come from the gateway's cache, so the run must wait.
        page.select_option("#test-form select[name=version]", "1")
        page.click("#test-form button[type=submit]")
        page.wait_for_url("**/runs/*/live")
        page.evaluate("window.__sameDocument = true")
        assert page.get_attribute("#live", "data-status") == "running"
        assert page.inner_text("#live-done") == "0"
        # Three model answers and one judgement: at least one case finishes, never all three.
        fake.allow(4)
        expect(page.locator("#live-done")).to_have_text(re.compile(r"^[12]$"), timeout=30_000)
        assert page.get_attribute("#live", "data-status") == "running"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "dashboard-live.png"), full_page=True)
    finally:
        fake.gate.set()
    page.wait_for_selector("#live[data-status=done]", timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    assert page.inner_text("#live-done") == page.inner_text("#live-total") == "3"
    assert page.inner_text("#live-passed") == "3"
    assert page.is_visible("#live-finished")
    run_id = page.get_attribute("#live", "data-run")
    with _client(facts) as client:
        from promstack.evals import engine

        run = engine.get_run(client, run_id)
    assert run["status"] == "done" and run["prompt_version"] == 1 and run["summary"]["passed"] == 3


def test_arena_leaderboard_matrix_and_a_vote(site, page):
    url, facts, _ = site
    page.goto(url + "/arena")
    page.wait_for_url(f"**/arena/{facts['arena']}")
    board = page.locator("#leaderboard tbody tr td:nth-child(2)").all_inner_texts()
    assert board == ["openai/q3", "openai/q2", "openai/q1"]
    assert page.locator("#winrate-matrix td.self").count() == 3
    assert page.inner_text("#winrate-matrix tbody tr:first-child td:nth-child(3)").strip() == "100%"
    page.locator("#matches-table tr.case").first.click()
    page.locator("#matches-table tr.detail button[value=tie]").first.click()
    page.wait_for_selector(".flash.ok")
    with _client(facts) as client:

        assert [v["winner"] for v in client.evals.votes(facts["arena"])] == ["tie"]


def test_the_filter_menus_offer_what_the_call_log_holds(site, page):
    url, facts, _ = site
    from promstack import monitoring

    with _client(facts) as client:
        found = monitoring.dimensions(client.store.db)
    assert found["environments"] == ["development", "production", "staging"]
    assert (42, "support/answer") in found["prompts"] and "openai/gpt-4o-mini" in found["models"]
    page.goto(url + "/monitoring")
    options = page.locator("#monitor-filters select[name=model] option").all_inner_texts()
    assert options == ["all", *found["models"]]


def test_compare_runs_pairs_cases_across_models(site):
    """The engine function behind /runs/compare: v2 on openai/good against v4 on openai/bad."""
    _, facts, _ = site
    from promstack.evals.engine import compare_runs

    good, bad = facts["runs"]
    with _client(facts) as client:
        found = compare_runs(client, good, bad)
        assert found["counts"]["broke"] == 3 and sum(found["counts"].values()) == 3
        assert [r["case_idx"] for r in found["rows"]] == [0, 1, 2]
        assert all(r["a"]["status"] == "pass" and r["b"]["status"] == "fail" for r in found["rows"])
        assert compare_runs(client, bad, good)["counts"]["fixed"] == 3
        with pytest.raises(InvalidInput, match="arena run"):
            compare_runs(client, good, facts["arena"])
