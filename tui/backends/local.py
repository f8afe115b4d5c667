"""The local backend: a GGUF model on this machine through llama.cpp (offline)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tui.backends import AskOptions, Backend

if TYPE_CHECKING:
    import argparse

    from backends.local.platform import LocalPlatform, LocalSchema
    from tui.onboarding.flow import StepFactory
    from tui.settings import Settings
    from tui.wiring import ChatOptions


def platform(settings: Settings, overrides: Mapping[str, Any]) -> LocalPlatform:
    from backends.local.models import ModelStore
    from backends.local.platform import LocalPlatform

    return LocalPlatform(store=ModelStore(settings.local.models_dir or None))


def schema(options: ChatOptions, settings: Settings, tool_timeout: float) -> LocalSchema:
    """``options.overrides``: ``chat_format`` (``--chat-format``) beats ``[local] chat_format``."""
    from backends.local.catalog import starter_entry
    from backends.local.platform import LocalSchema

    local = settings.local
    return LocalSchema(
        # No model chosen: the offline starter that ships with spezichat.
        model=options.model or starter_entry().id,
        system_prompts=options.system_prompts,
        functions=options.tools,
        tool_timeout=tool_timeout,
        chat_format=str(options.overrides.get("chat_format") or local.chat_format),
        n_gpu_layers=local.n_gpu_layers,
        n_ctx=local.n_ctx,
        n_batch=local.n_batch,
        n_threads=local.n_threads,
        seed=local.seed,
        flash_attn=local.flash_attn,
        temperature=options.temperature,
        top_p=options.top_p,
        top_k=local.top_k,
        min_p=local.min_p,
        repeat_penalty=local.repeat_penalty,
        repeat_last_n=local.repeat_last_n,
        chat_template=local.chat_template,
        max_tokens=options.max_tokens,
        stop=tuple(local.stop),
        cpu_extra_buffers=local.cpu_extra_buffers,
        **options.extra,
    )


async def list_models(settings: Settings) -> list[tuple[str, str]]:
    from tui.commands.download import list_local

    return await list_local(settings)


def onboarding() -> tuple[StepFactory, ...]:
    from tui.onboarding.local import LocalDownloadStep, OffloadStep, StarterModelStep

    return (StarterModelStep, LocalDownloadStep, OffloadStep)


def _add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("on-device models (--backend local)")
    group.add_argument(
        "--chat-format",
        metavar="NAME",
        help="on-device chat format for a model without a chat template (for example "
        "chatml, gemma, transcript); default: [local] chat_format",
    )


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    chat_format = getattr(args, "chat_format", None)
    return {"chat_format": chat_format} if chat_format else {}


BACKEND = Backend(
    id="local",
    label="On-device model",
    summary="Runs on this computer, offline; a tiny model is bundled, more to download.",
    platform=platform,
    schema=schema,
    requires=("llama_cpp:llama-cpp-python",),
    section="local",
    onboarding=onboarding,
    # Nothing to warm up: the engine loads the model on a thread of its own.
    list_models=list_models,
    ask_options=AskOptions(add=_add_options, read=_read_options, exclusive=True),
)
