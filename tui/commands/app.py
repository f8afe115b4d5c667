"""Start the terminal app (``spezichat`` with no command)."""

from __future__ import annotations

import argparse


def run_app(args: argparse.Namespace) -> int:
    from tui.commands.common import load_settings

    settings = load_settings()
    if settings is None:
        return 1
    from tui.app import SpeziChatApp

    app = SpeziChatApp(settings=settings, force_onboarding=args.onboarding)
    app.run()
    return app.return_code or 0
