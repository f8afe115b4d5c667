"""Who may use ``spezichat web``: loopback by default, elsewhere only with the token.

The app in the browser can spend the user's OpenAI key and read the history. On loopback
only pages of this machine may talk to the server (no DNS rebinding, no other site's
websocket); on any other address every route needs the random token printed at start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.web.browser import (
    ROOT,
    http_get,
    non_loopback_address,
    save_mock_settings,
    wait_until,
    web_server,
)
from tui.commands.app import WEB_DRIVER, terminal_problem

# Every route of textual-serve: the page, the app's websocket, its static files, downloads.
ROUTES = ("/", "/ws", "/static/js/textual.js", "/download/anything")
WEBSOCKET_HEADERS = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def test_a_non_loopback_bind_refuses_every_route_without_the_token() -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to listen on")
    save_mock_settings()
    with web_server("--host", address) as server:
        url = urlsplit(server.url)
        assert url.hostname == address
        token = parse_qs(url.query)["token"][0]
        assert len(token) >= 32
        assert "share it with care" in server.announcement
        base = f"http://{url.netloc}"
        for route in ROUTES:
            headers = WEBSOCKET_HEADERS if route == "/ws" else {}
            status, body, _ = http_get(base + route, headers)
            assert status == 403, route
            assert "access token" in body
            status, _, _ = http_get(f"{base}{route}?token=not-{token}", headers)
            assert status == 403, route
        # With the token: the page, and a cookie that lets its websocket and files through.
        status, body, headers = http_get(server.url)
        assert status == 200
        assert f"ws://{url.netloc}/ws" in body
        cookie = headers["Set-Cookie"].split(";")[0]
        assert token in cookie
        assert "httponly" in headers["Set-Cookie"].lower()
        assert "samesite=strict" in headers["Set-Cookie"].lower()
        assert http_get(f"{base}/static/js/textual.js", {"Cookie": cookie})[0] == 200
        assert http_get(f"{base}/static/js/textual.js?token={token}")[0] == 200


def test_on_loopback_other_host_names_and_other_sites_are_refused() -> None:
    save_mock_settings()
    with web_server() as server:
        netloc = urlsplit(server.url).netloc
        port = netloc.rsplit(":", 1)[1]
        assert http_get(server.url)[0] == 200
        assert http_get(f"http://localhost:{port}/")[0] == 200
        # DNS rebinding: a site's name that now points at 127.0.0.1.
        status, body, _ = http_get(server.url, {"Host": f"attacker.example:{port}"})
        assert status == 403
        assert "this machine" in body
        # Any web page may open a websocket to 127.0.0.1: its Origin gives it away.
        for route in ROUTES:
            headers = {**WEBSOCKET_HEADERS, "Origin": "http://attacker.example"}
            assert http_get(server.url.rstrip("/") + route, headers)[0] == 403, route
        same_site = {"Origin": f"http://{netloc}"}
        assert http_get(f"{server.url}static/js/textual.js", same_site)[0] == 200
        assert server.app_pids() == set()  # no app was started for any of them


def test_without_textual_serve_it_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['textual_serve'] = None\n"
        "from tui.cli import main\n"
        "sys.exit(main(['web']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("error: spezichat web needs the package textual-serve")
    assert lines[1].startswith("  why: ")
    assert lines[2] == "  fix: Install it with: pip install 'spezichat[web]'"
    assert result.stdout == ""


def test_a_port_in_use_is_a_three_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tui", "web", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert lines[0] == f"error: Cannot serve on 127.0.0.1:{port}: the port is in use."
    assert "--port" in lines[2]


def test_the_terminal_check_lets_textual_serves_web_driver_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under pytest the standard streams are not all terminals (output is captured).
    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)
    if all(os.isatty(fd) for fd in (0, 1, 2)):
        pytest.skip("run with captured output: here every stream is a terminal")
    assert terminal_problem() is not None
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.headless_driver:HeadlessDriver")
    assert terminal_problem() is not None  # only the web driver brings keys and a screen
    monkeypatch.setenv("TEXTUAL_DRIVER", WEB_DRIVER)
    assert terminal_problem() is None


def test_open_opens_the_page_in_the_default_browser(tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    # Python's webbrowser runs $BROWSER with the URL for %s: here a shell that notes it.
    browser = f"sh -c 'echo \"$0\" > {opened}' %s"
    save_mock_settings()
    with web_server("--open", env={**os.environ, "BROWSER": browser}) as server:
        wait_until(lambda: opened.exists() and opened.read_text().strip(), "the browser opened")
        assert opened.read_text().strip() == server.url
