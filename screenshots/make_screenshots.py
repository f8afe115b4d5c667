"""Make the README's screenshots from the real app (``python screenshots/make_screenshots.py``).

The scenes are the snapshot tests' (:mod:`tests.snapshots.scenes`), so what the README
shows is what ``pytest tests/snapshots`` checks; after a deliberate change to a screen,
update both::

    pytest tests/snapshots --snapshot-update
    python screenshots/make_screenshots.py

The app runs headless at 100x30 with temporary config, data and cache directories, so your
own settings, key and history are never read or written. The scenes use the mock backend
and the test suite's loopback servers (OpenAI, the Hugging Face hub, a TLS fog node
advertised over mDNS on 127.0.0.1 only), which they start and stop themselves. ``web.png``
is a chat in Chromium through ``spezichat web`` (skipped without Chromium).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent


def _isolate(base: Path) -> None:
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        os.environ[name] = str(base / name.lower())
    os.environ["HF_HOME"] = str(base / "hf-home")
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "HF_ENDPOINT",
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "SPEZICHAT_FOG_CA_CERT",
        "SPEZICHAT_FOG_TOKEN",
    ):
        os.environ.pop(name, None)
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"


def main() -> None:
    from tests.snapshots.scenes import README_SIZE, SCENES, shoot

    with tempfile.TemporaryDirectory() as base:
        _isolate(Path(base))
        for scene in SCENES:
            if not scene.readme:
                continue
            stage = Path(base) / scene.name
            stage.mkdir()
            path = OUT / f"{scene.name}.svg"
            path.write_text(shoot(scene, README_SIZE, stage), encoding="utf-8")
            print(path.relative_to(ROOT))
        web()


def web() -> None:
    """``web.png``: a chat in Chromium through ``spezichat web`` (tests/web/browser.py)."""
    from tests.web.browser import browser_missing, chat_screenshot

    missing = browser_missing()
    if missing:
        print(f"web.png skipped: {missing}", file=sys.stderr)
        return
    print(chat_screenshot(OUT / "web.png").relative_to(ROOT))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
