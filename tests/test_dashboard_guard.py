"""The dashboard behind the app's guard: a network bind needs the token on every page, static
file and form (a browser gives it as the Basic password); forms need the page's CSRF token;
foreign Origins and rebound Hosts are refused."""

from __future__ import annotations

import base64
import os
import re

import httpx
import pytest
from test_dashboard import CHROMIUM, CHROMIUM_ARGS
from test_dashboard_fixtures import serve

TOKEN = "s3cret-token"
PAGES = ("/prompts", "/prompts/1", "/prompts/1/diff?a=1&b=2", "/runs", "/arena", "/monitoring",
         "/static/dashboard.js", "/static/uplot/uPlot.iife.min.js")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from promstack import Client

    db = tmp_path_factory.mktemp("guard") / ".promstack" / "promstack.db"
    with Client(db) as client:
        client.create_prompt("support/refund", "환불 절차를 안내하세요: {{ input }}", model_config={"model": "openai/x"})
        client.save("support/refund", "환불 절차를 단계별로 안내하세요: {{ input }}")
    return db


@pytest.fixture(scope="module")
def networked(workspace):
    """`PROMSTACK_TOKEN=... promstack serve --host 0.0.0.0`, reached here on loopback."""
    from promstack.web.app import create_app

    with serve(create_app(workspace, host="0.0.0.0", token=TOKEN)) as url:
        yield url


@pytest.fixture(scope="module")
def local(workspace):
    from promstack.web.app import create_app

    with serve(create_app(workspace)) as url:
        yield url


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _head(db):
    from promstack import Client

    with Client(db) as client:
        return client.get_prompt(1).version


def test_every_page_needs_the_token_on_a_network_bind(networked):
    for path in PAGES:
        refused = httpx.get(networked + path)
        assert refused.status_code == 401, path
        challenges = refused.headers.get_list("www-authenticate")
        assert any(c.startswith("Basic") for c in challenges) and any(c.startswith("Bearer") for c in challenges)
        assert httpx.get(networked + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(networked + path, headers=_basic("me", "wrong")).status_code == 401
        ok = httpx.get(networked + path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, (path, ok.text[:200])
        assert httpx.get(networked + path, headers=_basic("anyone", TOKEN)).status_code == 200


def test_a_form_needs_the_pages_csrf_token(local, workspace):
    before = _head(workspace)
    page = httpx.get(local + "/prompts/1").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    for form in ({"version": "1"}, {"version": "1", "csrf": "forged"}):
        refused = httpx.post(local + "/prompts/1/rollback", data=form)
        assert refused.status_code == 403 and "reload the page" in refused.text
    assert _head(workspace) == before  # nothing was written
    foreign = httpx.post(local + "/prompts/1/rollback", data={"version": "1", "csrf": csrf},
                         headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "Origin not allowed" in foreign.text
    rebound = httpx.get(local + "/prompts", headers={"Host": "attacker.example:8787"})
    assert rebound.status_code == 421
    assert _head(workspace) == before
    done = httpx.post(local + "/prompts/1/rollback", data={"version": "1", "csrf": csrf},
                      headers={"Origin": local})
    assert done.status_code == 303 and done.headers["location"] == "/prompts/1"
    assert _head(workspace) == before + 1


def test_a_browser_signs_in_with_the_token_and_posts_back(networked, workspace):
    """A person on another machine opens http://promstack.test:PORT (mapped to loopback here):
    the browser asks for the token, and the page's own forms work under that name."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed: pip install -e '.[dev]' (make test does)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium.sh (make test does)")
    port = networked.rsplit(":", 1)[1]
    site = f"http://promstack.test:{port}"
    args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP promstack.test 127.0.0.1"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            anonymous = browser.new_context()
            with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
                anonymous.new_page().goto(site + "/prompts")  # challenged, and it has no token to give
            anonymous.close()
            context = browser.new_context(http_credentials={"username": "me", "password": TOKEN})
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            from promstack import Client

            with Client(workspace) as client:  # a head unlike v1, whatever ran before
                client.save(1, "환불: {{ input }}")
            assert page.goto(site + "/prompts/1").status == 200
            before = _head(workspace)
            page.select_option("#rollback-form select[name=version]", "1")
            page.click("#rollback-form button[type=submit]")
            page.wait_for_selector(".flash.ok")
            assert _head(workspace) == before + 1
            assert errors == []
            context.close()
        finally:
            browser.close()
