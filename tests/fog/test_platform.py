"""Dispatch: node order, failover before the first token, per-node stream limits."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest

from backends import Runner
from backends.events import Notice, TextDelta
from backends.fog.certs import NodeCertificates
from backends.fog.errors import FogConnectivityError, FogGenerationError
from backends.fog.platform import FogPlatform, FogSchema
from tests.fog.conftest import MODEL, TOKEN, KillableNode, manual_config, server_context
from tests.support.openai_server import OpenAITestServer, Reply


@pytest.fixture
def nodes(node_certs: NodeCertificates) -> Iterator[list[OpenAITestServer]]:
    """Three TLS nodes on 127.0.0.1 with the same certificate, all serving MODEL."""
    servers = [
        OpenAITestServer(api_key=TOKEN, models=(MODEL,), ssl_context=server_context(node_certs))
        for _ in range(3)
    ]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


async def test_failover_to_the_next_node_before_the_first_token(
    killable_nodes: list[KillableNode], node_certs: NodeCertificates
) -> None:
    primary, backup = killable_nodes
    config = manual_config(ca=node_certs.ca_cert, strategy="ordered")
    config = dataclasses.replace(config, manual_nodes=(primary.url, backup.url))
    platform = FogPlatform(config)
    async with Runner([platform]) as runner:
        session = runner.session(FogSchema(model=MODEL))
        session.context.append_user("first")
        assert "".join([p async for p in session.generate()]) == "Echo: first"
        browser = await platform.browser()
        keys = {n.port: n.key for n in browser.nodes}
        assert platform.served == {keys[primary.port]: 1}

        primary.kill()  # the primary crashes; the list still says it is fine
        session.context.append_user("second")
        events = [e async for e in session.stream()]
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        notices = [e.text for e in events if isinstance(e, Notice)]
        assert text == "Echo: second"
        assert platform.served == {keys[primary.port]: 2, keys[backup.port]: 1}
        assert len(notices) == 1 and "failed before answering" in notices[0]
        # The failed node is marked and goes to the back of the line.
        dead = next(n for n in browser.nodes if n.port == primary.port)
        assert dead.status == "error" and isinstance(dead.error, FogConnectivityError)

        session.context.append_user("third")
        assert "".join([p async for p in session.generate()]) == "Echo: third"
        assert platform.served[keys[backup.port]] == 2
        assert platform.served[keys[primary.port]] == 2  # not tried again


async def test_node_errors_before_output_fail_over_but_not_after(
    nodes: list[OpenAITestServer], node_certs: NodeCertificates
) -> None:
    first, second, _ = nodes
    platform = FogPlatform(manual_config(first, second, ca=node_certs.ca_cert, strategy="ordered"))
    first.script(Reply.api_error(500, "overloaded", type="server_error"))
    second.script(Reply(text="from the second"))
    async with Runner([platform]) as runner:
        session = runner.session(FogSchema(model=MODEL))
        session.context.append_user("hi")
        assert "".join([p async for p in session.generate()]) == "from the second"

        # Once text arrived, a broken stream is not silently replayed elsewhere.
        first.script(Reply(text="half of a reply", drop_after=2))
        session.context.append_user("again")
        with pytest.raises(FogGenerationError):
            async for _piece in session.generate():
                pass
        assert len(second.chat_requests) == 1
        assert session.context[-1].content.startswith("hal")


async def test_every_node_fails(
    nodes: list[OpenAITestServer], node_certs: NodeCertificates
) -> None:
    first, second, _ = nodes
    platform = FogPlatform(manual_config(first, second, ca=node_certs.ca_cert))
    for server in (first, second):
        server.script(Reply.api_error(500, "broken", type="server_error"))
    async with Runner([platform]) as runner:
        session = runner.session(FogSchema(model=MODEL))
        session.context.append_user("hi")
        with pytest.raises(FogGenerationError) as caught:
            async for _piece in session.generate():
                pass
    assert "broken" in caught.value.reason
    assert len(first.chat_requests) == len(second.chat_requests) == 1


async def test_a_node_serves_at_most_its_stream_limit(
    nodes: list[OpenAITestServer], node_certs: NodeCertificates
) -> None:
    node = nodes[0]
    platform = FogPlatform(manual_config(node, ca=node_certs.ca_cert, max_streams_per_node=1))
    node.script(Reply(text="slow one", stall_after=2), Reply(text="quick one"))
    async with Runner([platform]) as runner:
        slow = runner.session(FogSchema(model=MODEL))
        slow.context.append_user("slow")
        quick = runner.session(FogSchema(model=MODEL))
        quick.context.append_user("quick")

        slow_stream = slow.generate()
        assert await slow_stream.__anext__() == "slo"  # the slow reply holds the only slot
        quick_task = asyncio.ensure_future(_collect(quick))
        await asyncio.sleep(0.3)
        assert not quick_task.done()
        assert len(node.chat_requests) == 1  # the second request waits on our side
        assert platform.in_flight(platform.candidates(MODEL, set())[0].key) == 1

        slow.cancel()
        async for _piece in slow_stream:
            pass
        node.release()
        assert await asyncio.wait_for(quick_task, 10) == "quick one"
        assert len(node.chat_requests) == 2


async def test_least_busy_spreads_concurrent_streams(
    nodes: list[OpenAITestServer], node_certs: NodeCertificates
) -> None:
    config = manual_config(*nodes, ca=node_certs.ca_cert, strategy="least-busy")
    platform = FogPlatform(config)
    for server in nodes:
        server.script(Reply(text="held", stall_after=2))
    async with Runner([platform]) as runner:
        sessions = [runner.session(FogSchema(model=MODEL)) for _ in nodes]
        streams = []
        for session in sessions:
            session.context.append_user("hi")
            stream = session.generate()
            await stream.__anext__()  # the first piece arrived: the stream is in flight
            streams.append(stream)
        assert sorted(len(s.chat_requests) for s in nodes) == [1, 1, 1]
        for session, stream in zip(sessions, streams, strict=True):
            session.cancel()
            async for _piece in stream:
                pass
        for server in nodes:
            server.release()
    assert platform.served and set(platform.served.values()) == {1}


async def test_nodes_that_list_the_model_come_first(
    node_certs: NodeCertificates,
) -> None:
    with (
        OpenAITestServer(
            api_key=TOKEN, models=("other-model",), ssl_context=server_context(node_certs)
        ) as without,
        OpenAITestServer(
            api_key=TOKEN, models=(MODEL,), ssl_context=server_context(node_certs)
        ) as with_model,
    ):
        platform = FogPlatform(
            manual_config(without, with_model, ca=node_certs.ca_cert, strategy="ordered")
        )
        async with Runner([platform]) as runner:
            await (await platform.browser()).settle(5)  # both lists of models are known
            assert await platform.list_models() == sorted([MODEL, "other-model"])
            session = runner.session(FogSchema(model=MODEL))
            session.context.append_user("hi")
            assert "".join([p async for p in session.generate()]) == "Echo: hi"
        # First in the configured order, but it does not list the model: tried last.
        assert without.chat_requests == [] and len(with_model.chat_requests) == 1


async def _collect(session: object) -> str:
    return "".join([piece async for piece in session.generate()])  # type: ignore[attr-defined]
