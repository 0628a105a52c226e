"""The web app in a real browser (Debian's Chromium, driven by playwright-core
from ``web/e2e``) against the whole marketplace as `make run` starts it: the
gateway serves the built app at ``/`` and the API on the same origin."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.integration.launcher import BIN, ROOT, marketplace

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WEB = ROOT / "web"
SCREENSHOTS = ROOT / "docs" / "screenshots"
EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception)\b")


@pytest.fixture(scope="module")
def built_app() -> Path:
    """`make test` builds the app first (the Makefile's `web` target)."""
    index = WEB / "dist" / "index.html"
    if not index.is_file():
        pytest.fail("web/dist is not built: run `make web` (make test does)")
    return index


def test_the_gateway_serves_the_app_and_keeps_api_paths_its_own(
    built_app: Path, tmp_path: Path, amqp_uri: str
):
    with marketplace(tmp_path, amqp_uri) as running:
        page = requests.get(f"{running.url}/projects/any-id", timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.text == built_app.read_text()
        asset = next((WEB / "dist" / "assets").glob("*.js")).name
        script = requests.get(f"{running.url}/assets/{asset}", timeout=10)
        assert script.status_code == 200 and "immutable" in script.headers["Cache-Control"]
        unknown = requests.get(f"{running.url}/api/v1/no-such-thing", timeout=10)
        assert unknown.status_code == 404
        assert unknown.headers["Content-Type"] == "application/problem+json"
        escape = requests.get(f"{running.url}/..%2f..%2fpyproject.toml", timeout=10)
        assert "[project]" not in escape.text


def test_buyer_and_seller_do_the_whole_journey_in_the_browser(
    built_app: Path, tmp_path: Path, amqp_uri: str
):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is needed: apt-get install chromium (make test does)")
    with marketplace(tmp_path, amqp_uri) as running:
        env = dict(
            running.env,  # the stack's stores, for the operators' grant-admin
            MARKETPLACE_ADMIN=str(BIN / "marketplace-admin"),
            MARKETPLACE_URL=running.url,  # (vitest sets BASE_URL itself)
            MAIL_DIR=str(tmp_path / "mail"),
            SCREENSHOT_DIR=str(SCREENSHOTS),
            CHROMIUM=chromium,
            NO_COLOR="1",
        )
        result = subprocess.run(
            ["npm", "run", "--silent", "e2e"],
            cwd=WEB,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = running.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert not unexpected_tracebacks(output), output[-6000:]


def unexpected_tracebacks(output: str) -> list[str]:
    """Tracebacks but eventlet's of a browser closing a live stream (a page
    reloaded or left): the server logs the write that found the socket gone."""
    found = []
    for block in output.split("Traceback (most recent call last):")[1:]:
        lines = [line.split("| ", 1)[-1].strip() for line in block.splitlines()]
        error = next((line for line in lines if EXCEPTION_LINE.match(line)), block[:500])
        if not error.startswith(("BrokenPipeError", "ConnectionResetError")):
            found.append(error)
    return found
