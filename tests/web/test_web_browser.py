"""``spezichat web`` end to end: the real server, the real app, a real headless Chromium.

The app processes run with textual-serve's web driver and pipes for their streams, which
``terminal_problem()`` must let through; settings (mock backend) and history come from the
test's XDG directories, which the server and its apps inherit.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.terminal import stored_entries
from tests.web.browser import (
    Tab,
    browser_missing,
    chromium,
    http_get,
    non_loopback_address,
    process_ended,
    save_mock_settings,
    wait_until,
    web_server,
)
from tui.store import default_path

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))

QUESTION = "Hello from the browser"
REPLY_END = "hello, terminal"  # the end of the mock's default reply


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(autouse=True)
def mock_backend() -> None:
    save_mock_settings()


def _chat(tab: Tab) -> None:
    tab.wait_for_chat()
    tab.type(QUESTION)
    tab.page.keyboard.press("Enter")
    tab.wait_for(lambda: REPLY_END in tab.text(), "the mock's reply in the page")


def _saved_chat() -> list[tuple[str, str, bool]]:
    return [
        (role, content, complete)
        for role, content, complete, _ in stored_entries(default_path())
        if role in ("user", "assistant")
    ]


def test_a_chat_in_the_browser_is_answered_and_closing_the_tab_saves_it(browser: Browser) -> None:
    with web_server() as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert "token" not in server.url  # loopback: no token needed
        tab = Tab(browser, server.url)
        assert tab.response is not None and tab.response.status == 200
        _chat(tab)
        apps = server.app_pids()
        assert len(apps) == 1  # one app process for the tab
        tab.close()
        wait_until(lambda: all(process_ended(pid) for pid in apps), "the tab's app ended")
        saved = _saved_chat()
        assert saved[0] == ("user", QUESTION, True)
        role, reply, complete = saved[1]
        assert role == "assistant" and complete
        assert "spezichat" in reply and REPLY_END in reply
        assert server.stop() == 0


def test_ctrl_c_stops_the_server_and_every_app_it_started(browser: Browser) -> None:
    with web_server() as server:
        tabs = [Tab(browser, server.url) for _ in range(2)]
        for tab in tabs:
            tab.wait_for_chat()
        _chat(tabs[0])
        apps = server.app_pids()
        assert len(apps) == 2  # one process per tab
        assert server.stop(signal.SIGINT) == 0  # the server alone gets it, as from `kill -INT`
        wait_until(lambda: all(process_ended(pid) for pid in apps), "every app ended")
        assert "stopped" in server.stderr
        # The apps quit like Ctrl+Q: the conversation of the first tab is saved.
        assert ("user", QUESTION, True) in _saved_chat()
        for tab in tabs:
            tab.close()


def test_the_tab_limit_shows_a_page_and_frees_when_a_tab_closes(browser: Browser) -> None:
    with web_server("--max-sessions", "1") as server:
        first = Tab(browser, server.url)
        first.wait_for_chat()
        status, body, _ = http_get(server.url)
        assert status == 503
        assert "All 1 spezichat sessions are in use" in body
        assert "Close another spezichat tab" in body
        apps = server.app_pids()
        first.close()
        wait_until(lambda: all(process_ended(pid) for pid in apps), "the first tab's app ended")
        wait_until(lambda: http_get(server.url)[0] == 200, "the page served again")
        second = Tab(browser, server.url)
        second.wait_for_chat()
        second.close()


def test_on_another_address_the_token_url_works_and_the_bare_url_is_refused(
    browser: Browser,
) -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to listen on")
    with web_server("--host", address) as server:
        assert "?token=" in server.url
        refused = browser.new_page()
        response = refused.goto(server.url.split("?")[0])
        assert response is not None and response.status == 403
        assert "access token" in refused.content()
        refused.close()
        assert server.app_pids() == set()
        # The page sets the cookie that lets its websocket and scripts through.
        tab = Tab(browser, server.url)
        _chat(tab)
        tab.close()
