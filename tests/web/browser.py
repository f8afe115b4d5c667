"""``spezichat web`` as a real process, and a real headless Chromium to open its page.

Used by the tests in this folder, by ``tests/bench/bench_web.py`` and by
``screenshots/make_screenshots.py`` (``web.png``). The browser is Debian's ``chromium``
(``apt-get install chromium``), driven by Playwright with that executable: Playwright's
own browser download is never used. The app draws on a canvas, so what it shows is read
from the websocket frames the page receives (the app's screen output), recorded in the
page by a script that wraps ``WebSocket``; the history database tells what was saved.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.terminal import _ESCAPES, LIMIT_S

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_NAMES = ("chromium", "chromium-browser")

# Records, in the page, each message the app sends (with its time) and each key press.
RECORDER = """
(() => {
  window.__frames = [];
  window.__keys = [];
  const decoder = new TextDecoder();
  const Original = window.WebSocket;
  window.WebSocket = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const data = typeof event.data === "string"
          ? "" : decoder.decode(event.data, {stream: true});
        window.__frames.push([performance.now(), data]);
      });
    }
  };
  document.addEventListener("keydown", (event) => {
    window.__keys.push([performance.now(), event.key]);
  }, true);
})();
"""


def chromium_path() -> str | None:
    """Debian's Chromium (or the one ``SPEZICHAT_CHROMIUM`` names), if installed."""
    named = os.environ.get("SPEZICHAT_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_missing() -> str | None:
    """Why no browser test can run here, or ``None``."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "Chromium is not installed (apt-get install -y chromium)"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-proxy-server"]
        )
        try:
            yield browser
        finally:
            browser.close()


def visible(data: str) -> str:
    return _ESCAPES.sub("", data)


@dataclass
class Frame:
    at_ms: float
    text: str
    """The frame's text without escape sequences."""


class Tab:
    """One browser tab on the served app."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1200, "height": 800})
        self.page.add_init_script(RECORDER)
        self.opened_at = time.monotonic()
        self.response = self.page.goto(url)

    def frames(self) -> list[Frame]:
        raw: list[list[Any]] = self.page.evaluate("window.__frames")
        return [Frame(at, visible(data)) for at, data in raw]

    def text(self) -> str:
        """Everything the app drew so far, without escape sequences."""
        chunks: list[str] = self.page.evaluate("window.__frames.map((frame) => frame[1])")
        return visible("".join(chunks))

    def wait_for(self, condition: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + LIMIT_S
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"never reached in the browser: {what}\n{self.text()[-2000:]}")
            self.page.wait_for_timeout(20)

    def wait_for_chat(self) -> None:
        """Until the chat screen (its prompt) is drawn; then the keys go to the terminal."""
        self.wait_for(lambda: "Message" in self.text(), "the chat screen")
        self.page.locator(".xterm-helper-textarea").focus()

    def type(self, keys: str) -> None:
        self.page.keyboard.type(keys)

    def close(self) -> None:
        self.page.close()


class WebServer:
    """``spezichat web --port 0 ARGS`` in its own session; its URL from the first line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tui", "web", "--port", "0", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self.stderr = ""
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        first = self.process.stdout.readline()  # "" if it exits first
        found = re.search(r"http://\S+", first)
        if found is None:
            self.process.wait(timeout=LIMIT_S)
            self._stderr_reader.join(timeout=LIMIT_S)
            raise AssertionError(f"spezichat web did not start: {first!r}\n{self.stderr}")
        self.url = found.group(0)
        self.announcement = first + "".join(self.process.stdout.readline() for _ in range(2))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr += line

    def app_pids(self) -> set[int]:
        """The processes the server started (one per tab): its children (Linux)."""
        pids: set[int] = set()
        for children in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            try:
                pids.update(int(pid) for pid in children.read_text().split())
            except OSError:
                continue  # the thread ended
        return pids

    def stop(self, signum: int = signal.SIGINT) -> int:
        """Signal the server alone (not its apps) and wait for it to end."""
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=LIMIT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"spezichat web did not stop:\n{self.stderr}") from None
        self._stderr_reader.join(timeout=LIMIT_S)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # the server and its apps
        self.process.wait()


@contextmanager
def web_server(*args: str, env: dict[str, str] | None = None) -> Iterator[WebServer]:
    server = WebServer(*args, env=env)
    try:
        yield server
    finally:
        server.close()


def process_ended(pid: int) -> bool:
    """Whether ``pid`` is gone (or a zombie that nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached: {what}")
        time.sleep(0.05)


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """Status, body and headers of a GET, without proxies; error statuses included."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=LIMIT_S) as response:
            return response.status, response.read().decode("utf-8", "replace"), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace"), error.headers


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than loopback that can be listened on."""
    candidates: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # UDP: no packet, the route is looked up
            candidates.append(probe.getsockname()[0])
    except OSError:
        pass
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        candidates += [str(info[4][0]) for info in infos]
    except OSError:
        pass
    for address in candidates:
        if address.startswith("127.") or address == "0.0.0.0":
            continue
        try:
            with socket.socket() as attempt:
                attempt.bind((address, 0))
        except OSError:
            continue
        return address
    return None


def save_mock_settings(env: dict[str, str] | None = None) -> None:
    """An onboarded config with the mock backend, in the XDG directories of ``env``."""
    setup = (
        "from tui.settings import Settings\n"
        "settings = Settings()\n"
        "settings.general.backend = 'mock'\n"
        "settings.general.model = 'mock'\n"
        "settings.save()\n"
    )
    subprocess.run([sys.executable, "-c", setup], cwd=ROOT, env=env, check=True)


def chat_screenshot(path: Path, question: str = "How do I print in Python?") -> Path:
    """Serve the app (mock backend, fresh directories), chat once in Chromium, save a PNG."""
    import tempfile

    with tempfile.TemporaryDirectory() as base:
        env = {**os.environ}
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            env[name] = str(Path(base) / name.lower())
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SPEZICHAT_FOG_TOKEN"):
            env.pop(name, None)
        save_mock_settings(env)
        with web_server(env=env) as server, chromium() as browser:
            tab = Tab(browser, server.url)
            tab.wait_for_chat()
            tab.type(question)
            tab.page.keyboard.press("Enter")
            tab.wait_for(lambda: "hello, terminal" in tab.text(), "the mock's reply")
            tab.page.wait_for_timeout(500)  # the last frames reach the canvas
            tab.page.screenshot(path=str(path))
            server.stop()
    return path
