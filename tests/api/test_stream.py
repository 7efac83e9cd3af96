"""The live stream's hand-over from hub threads to the API's event loop: a client that reads nothing is
dropped once its queue is full, the hub's thread never waits for it, and stopping the server ends every
stream. (Over real HTTP the socket buffers would hide a slow reader for megabytes; this drives the
stream's own queue directly, the part that decides.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from detectors.severity import Severity
from hub.alerts.model import Alert
from hub.api.stream import QUEUE_SIZE, AlertStream
from hub.api.tokens import Role, Token
from hub.registry import Registry
from tests.api.support import REGISTRY

OPERATOR = Token("t-ops", "ops", Role.OPERATOR, None, ("*",), 0, None)


def _alert(alert_id: int) -> Alert:
    return Alert(id=alert_id, kind="sos", severity=Severity.CRITICAL, state="open", subject="r-wang",
                 community="sunshine", building="b1", household="h1", resident="r-wang", device="band-wang",
                 evidence={}, count=1, first_seen_ms=0, last_seen_ms=0, tier=1, deadline_ms=None,
                 assigned_to=None, acknowledged_by=None, acknowledged_ms=None, resolved_by=None,
                 resolved_ms=None, outcome=None, note="")


async def _collect(events: AsyncIterator[str]) -> list[str]:
    return [event async for event in events]


def _stream() -> AlertStream:
    registry = Registry(REGISTRY)
    return AlertStream(lambda: registry, set)  # every token live


def test_a_client_that_falls_behind_is_dropped_without_holding_the_hub_thread() -> None:
    stream = _stream()
    bursts, burst = QUEUE_SIZE // 10 + 5, 10  # more changes in all than one queue holds

    def hub_thread_raises(first_id: int) -> None:
        for alert_id in range(first_id, first_id + burst):
            stream.changed(_alert(alert_id))

    async def scenario() -> tuple[list[str], list[str]]:
        reader, idle = stream.events(OPERATOR), stream.events(OPERATOR)
        assert await anext(reader) == ": connected\n\n"
        assert await anext(idle) == ": connected\n\n"
        received: list[str] = []

        async def read() -> None:
            async for event in reader:
                received.append(event)

        reading = asyncio.ensure_future(read())
        for n in range(bursts):
            # Runs on another thread and returns although the idle client reads nothing.
            await asyncio.wait_for(asyncio.to_thread(hub_thread_raises, n * burst), 10)
            while len(received) < (n + 1) * burst and not reading.done():
                await asyncio.sleep(0)
        # Ended by falling behind, not by the close below: collecting it would otherwise wait for ever.
        idle_events = await asyncio.wait_for(_collect(idle), 5)
        stream.close()
        await asyncio.wait_for(reading, 5)
        return received, idle_events

    received, idle_events = asyncio.run(scenario())
    assert len(received) == bursts * burst > QUEUE_SIZE, "a client that reads keeps up"
    assert all(event.startswith(f'event: alert\ndata: {{"id":{i},') for i, event in enumerate(received))
    assert idle_events == [], "the idle client's stream ended instead of growing without bound"


def test_stopping_the_server_ends_every_stream() -> None:
    stream = _stream()

    async def scenario() -> list[str]:
        events = stream.events(OPERATOR)
        assert await anext(events) == ": connected\n\n"
        stream.close()
        return [event async for event in events]

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == []
