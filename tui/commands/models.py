"""``spezichat models``: list the model ids a backend can use.

Each backend lists its models through its descriptor's ``list_models`` (see
:mod:`tui.backends`): ``async (settings) -> list[tuple[str, str]]`` returning
(model id, detail) rows.
"""

from __future__ import annotations

import argparse
from typing import Any


def listing_backends() -> list[str]:
    """The ids of the backends that have a model list, in registry order."""
    from tui.backends import REGISTRY

    return [backend.id for backend in REGISTRY.values() if backend.list_models is not None]


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
        help=f"backend to ask: {', '.join(listing_backends())} (default: the configured one)",
    )
    parser.add_argument(
        "-l", "--long", action="store_true", help="add details (owner, size...) after a tab"
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from backends.errors import LLMError
    from tui.backends import REGISTRY
    from tui.commands.common import fail, line_for_stdout, load_settings, usage_error

    settings = load_settings()
    if settings is None:
        return 1
    backend = args.backend or settings.general.backend
    listing = ", ".join(listing_backends())
    if not backend:
        return usage_error("models", f"name a backend with --backend ({listing})")
    found = REGISTRY.get(backend) if isinstance(backend, str) else None
    lister = found.list_models if found is not None else None
    if lister is None:
        return usage_error(
            "models", f"the {backend!r} backend has no model list; use one of {listing}"
        )
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
