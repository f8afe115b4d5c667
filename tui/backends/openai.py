"""The OpenAI backend: OpenAI's API, or any compatible server at ``OPENAI_BASE_URL``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tui.backends import HTTP_MODULES, Backend

if TYPE_CHECKING:
    from backends.openai import OpenAIPlatform, OpenAISchema
    from tui.onboarding.flow import StepFactory
    from tui.settings import Settings
    from tui.wiring import ChatOptions

API_MODULES = (*HTTP_MODULES, "backends.openai.client", "backends.openai.sse")
"""What the first request to an OpenAI-compatible API imports (fog nodes speak it too)."""


def platform(settings: Settings, overrides: Mapping[str, Any]) -> OpenAIPlatform:
    from backends.openai import OpenAIPlatform

    return OpenAIPlatform(
        base_url=settings.openai.base_url or None,
        timeout=settings.openai.timeout,
        idle_timeout=settings.openai.idle_timeout,
        max_concurrent_streams=settings.openai.max_concurrent_streams,
    )


def schema(options: ChatOptions, settings: Settings, tool_timeout: float) -> OpenAISchema:
    from backends.errors import ConfigurationError
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
        tool_timeout=tool_timeout,
        temperature=options.temperature,
        top_p=options.top_p,
        max_tokens=options.max_tokens,
        test_model_access=settings.openai.test_model_access,
        **options.extra,
    )


async def list_models(settings: Settings) -> list[tuple[str, str]]:
    """The models the OpenAI key can use (GET /models): id, then owner and date."""
    from datetime import datetime, timezone

    openai = platform(settings, {})
    try:
        models = await openai.list_models()
    finally:
        await openai.aclose()
    rows: list[tuple[str, str]] = []
    for model in models:
        details = [model.owned_by or ""]
        if model.created:
            created = datetime.fromtimestamp(model.created, timezone.utc)
            details.append(created.strftime("%Y-%m-%d"))
        rows.append((model.id, " ".join(d for d in details if d)))
    return rows


def onboarding() -> tuple[StepFactory, ...]:
    from tui.onboarding.openai import ApiKeyStep, ModelStep

    return (ApiKeyStep, ModelStep)


BACKEND = Backend(
    id="openai",
    label="OpenAI",
    summary="GPT models over the internet; needs an OpenAI API key.",
    platform=platform,
    schema=schema,
    requires=("httpx",),
    section="openai",
    onboarding=onboarding,
    warm_up=API_MODULES,
    list_models=list_models,
)
