"""Builds platforms and schemas from settings and command-line options.

The entry points (the app and ``spezichat ask``) call these; backends are imported
lazily, only the one in use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backends.errors import ConfigurationError
from backends.functions import Tool
from backends.session import Platform, Schema
from tui.settings import Settings

BACKENDS: dict[str, str] = {
    "mock": "A scripted mock model for demos and tests (no network).",
    "openai": "OpenAI's API (or any compatible server at OPENAI_BASE_URL); needs an API key.",
    "local": "A GGUF model on this machine through llama.cpp (no network once downloaded).",
}


@dataclass(frozen=True)
class ChatOptions:
    """What a chat asks of its backend, gathered from settings and the command line."""

    backend: str
    model: str = ""
    system_prompts: tuple[str, ...] = ()
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    tools: tuple[Tool, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def unknown_backend(name: str) -> ConfigurationError:
    return ConfigurationError(
        f"Unknown backend '{name}'.",
        reason=f"spezichat knows these backends: {', '.join(BACKENDS)}.",
        suggestion="Pass one of them with --backend, or run `spezichat --onboarding`.",
    )


def make_platform(backend: str, settings: Settings) -> Platform[Any]:
    """Create the platform for ``backend`` configured from ``settings``."""
    if backend == "mock":
        from backends.mock import MockPlatform

        return MockPlatform()
    if backend == "openai":
        from backends.openai import OpenAIPlatform

        return OpenAIPlatform(
            base_url=settings.openai.base_url or None,
            timeout=settings.openai.timeout,
            max_concurrent_streams=settings.openai.max_concurrent_streams,
        )
    if backend == "local":
        from backends.local.models import ModelStore
        from backends.local.platform import LocalPlatform

        return LocalPlatform(store=ModelStore(settings.local.models_dir or None))
    raise unknown_backend(backend)


def make_schema(options: ChatOptions, settings: Settings) -> Schema:
    """Create the schema that asks ``options.backend`` for a chat as described."""
    if options.backend == "mock":
        from backends.mock import MockSchema

        return MockSchema(
            model=options.model or "mock",
            system_prompts=options.system_prompts,
            functions=options.tools,
            **options.extra,
        )
    if options.backend == "openai":
        from backends.openai import OpenAISchema

        if not options.model:
            raise ConfigurationError(
                "No OpenAI model is chosen.",
                reason="Neither --model nor the settings name a model for the openai backend.",
                suggestion="Pass --model (for example gpt-4o-mini); "
                "`spezichat models --backend openai` lists the models your key can use.",
            )
        return OpenAISchema(
            model=options.model,
            system_prompts=options.system_prompts,
            functions=options.tools,
            temperature=options.temperature,
            top_p=options.top_p,
            max_completion_tokens=options.max_tokens,
            test_model_access=settings.openai.test_model_access,
            **options.extra,
        )
    if options.backend == "local":
        from backends.local.catalog import starter_entry
        from backends.local.platform import LocalSchema

        local = settings.local
        return LocalSchema(
            # No model chosen: the offline starter that ships with spezichat.
            model=options.model or starter_entry().id,
            system_prompts=options.system_prompts,
            functions=options.tools,
            chat_format=local.chat_format,
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
            max_tokens=options.max_tokens,
            stop=tuple(local.stop),
            **options.extra,
        )
    raise unknown_backend(options.backend)
