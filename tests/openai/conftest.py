"""Fixtures for the OpenAI backend tests: the loopback server and a platform aimed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backends.openai import OpenAIPlatform, RetryPolicy
from tests.support.openai_server import OpenAITestServer, openai_server

__all__ = ["openai_server"]

KEY = "sk-test-key"


@pytest.fixture
async def platform(openai_server: OpenAITestServer) -> AsyncIterator[OpenAIPlatform]:
    """An OpenAI platform for the test server, retrying without long waits."""
    platform = OpenAIPlatform(
        base_url=openai_server.base_url,
        api_key=KEY,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
    )
    yield platform
    await platform.aclose()
