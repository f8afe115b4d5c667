"""``spezichat models``: list the model ids a backend can use.

Listing dispatches by backend through :data:`LISTERS` (backend -> ``"module:function"``);
each lister is ``async def lister(settings) -> list[tuple[str, str]]`` returning
(model id, detail) rows. A backend adds itself with one entry.
"""

from __future__ import annotations

import argparse
from typing import Any

LISTERS: dict[str, str] = {
    "openai": "tui.commands.models:list_openai",
    "local": "tui.commands.download:list_local",
    "fog": "tui.commands.discover:list_fog",
}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the models a backend can use",
        description=(
            "Print the ids of the models a backend offers, one per line, for use with "
            "--model. Exit codes: 0 ok, 1 failure, 2 usage."
        ),
    )
    parser.add_argument(
        "-b",
        "--backend",
        help=f"backend to ask: {', '.join(LISTERS)} (default: the configured one)",
    )
    parser.add_argument(
        "-l", "--long", action="store_true", help="add details (owner, size...) after a tab"
    )


async def list_openai(settings: Any) -> list[tuple[str, str]]:
    """The models the OpenAI key can use (GET /models)."""
    from datetime import datetime, timezone

    from backends.openai import OpenAIPlatform
    from tui.wiring import make_platform

    platform = make_platform("openai", settings)
    assert isinstance(platform, OpenAIPlatform)
    try:
        models = await platform.list_models()
    finally:
        await platform.aclose()
    rows: list[tuple[str, str]] = []
    for model in models:
        details = [model.owned_by or ""]
        if model.created:
            created = datetime.fromtimestamp(model.created, timezone.utc)
            details.append(created.strftime("%Y-%m-%d"))
        rows.append((model.id, " ".join(d for d in details if d)))
    return rows


def run(args: argparse.Namespace) -> int:
    import asyncio
    import importlib

    from backends.errors import LLMError
    from tui.commands.common import fail, line_for_stdout, load_settings, usage_error

    settings = load_settings()
    if settings is None:
        return 1
    backend = args.backend or settings.general.backend
    if not backend:
        return usage_error("models", f"name a backend with --backend ({', '.join(LISTERS)})")
    target = LISTERS.get(backend)
    if target is None:
        return usage_error(
            "models", f"the {backend!r} backend has no model list; use one of {', '.join(LISTERS)}"
        )
    module_name, _, function = target.partition(":")
    lister = getattr(importlib.import_module(module_name), function)
    try:
        rows = asyncio.run(lister(settings))
    except LLMError as error:
        return fail(error)
    # Ids and details come from the server: exact into a pipe, neutralised on a terminal.
    for model_id, detail in rows:
        if args.long and detail:
            print(f"{line_for_stdout(model_id)}\t{line_for_stdout(detail)}")
        else:
            print(line_for_stdout(model_id))
    return 0
