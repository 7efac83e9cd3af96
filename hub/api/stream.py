"""The live alert stream: committed alert changes, from the hub's threads to each connected client.

The alert service calls `AlertStream.changed` on whichever hub thread made the change (evaluation,
escalation timer, an API action). It only schedules the fan-out on the API's event loop
(`call_soon_threadsafe`) and returns: the hub never waits on a client. Each client has a bounded queue;
one that falls `QUEUE_SIZE` changes behind is dropped (its stream ends; the page reconnects and re-reads
the list), never the hub slowed and never memory grown without bound.

Tokens are revoked (and expire) in the store, by the CLI as often as not: while streams are open, one
task checks every `TOKEN_CHECK_S` which of their tokens still count, in one query, and ends the streams
of those that do not. A token may hold at most `per_token` streams at once (`HUB_HTTP_STREAMS_PER_TOKEN`).

Each event shows its resident's name, so each is recorded in the read audit (`record_read`) before it is
sent, as a request for the alert would be; one that cannot be recorded is not sent (the stream ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field

from anyio import to_thread

from hub.alerts.model import Alert
from hub.api.audit import named_residents
from hub.api.schemas import AlertOut
from hub.api.scope import Scope
from hub.api.tokens import Token
from hub.registry import Registry

log = logging.getLogger(__name__)

QUEUE_SIZE = 256
KEEPALIVE_S = 15.0
TOKEN_CHECK_S = 1.0


class StreamLimitError(Exception):
    """A token asked for more live streams than it may hold; the message says how many."""


@dataclass(eq=False)
class Subscriber:
    token: Token
    queue: asyncio.Queue[Alert | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False


class AlertStream:
    def __init__(self, registry: Callable[[], Registry], tokens_live: Callable[[Collection[str]], set[str]],
                 *, per_token: int = 5, token_check_s: float = TOKEN_CHECK_S,
                 record_read: Callable[[Token, list[str]], None] = lambda token, residents: None) -> None:
        self._registry = registry
        # The read audit (it writes the store): run in the event loop's thread pool.
        self._record_read = record_read
        # Which of these token ids still count; run in the event loop's thread pool (it reads the store).
        self._tokens_live = tokens_live
        self._per_token = per_token
        self._token_check_s = token_check_s
        self._subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task[None] | None = None

    def check_room(self, token: Token) -> None:
        """Refuse (StreamLimitError) a stream beyond the token's limit, before its response starts."""
        held = sum(1 for s in self._subscribers if s.token.id == token.id)
        if held >= self._per_token:
            raise StreamLimitError(f"token {token.name!r} already holds {held} live streams, the most one "
                                   "token may (HUB_HTTP_STREAMS_PER_TOKEN); close one first")

    # --- hub threads ---------------------------------------------------------------------------

    def changed(self, alert: Alert) -> None:
        """An alert changed (called on a hub thread, after the commit). Returns at once."""
        loop = self._loop
        if loop is None or not self._subscribers:
            return
        # A closed loop (RuntimeError) means the API server is stopping, and its streams with it.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._fan_out, alert)

    def close(self) -> None:
        """End every stream (the server is stopping: an open stream would hold its shutdown up)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._end_all)

    # --- the event loop ------------------------------------------------------------------------

    def _fan_out(self, alert: Alert) -> None:
        registry = self._registry()
        for subscriber in list(self._subscribers):
            if Scope.of(subscriber.token, registry).alert_refusal(alert) is not None:
                continue
            try:
                subscriber.queue.put_nowait(alert)
            except asyncio.QueueFull:
                log.warning("alert stream of token %s fell %d changes behind: dropped", subscriber.token.id,
                            QUEUE_SIZE)
                self._drop(subscriber)

    def _drop(self, subscriber: Subscriber) -> None:
        subscriber.dropped = True
        self._subscribers.discard(subscriber)
        with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes it anyway
            subscriber.queue.put_nowait(None)

    def _end_all(self) -> None:
        for subscriber in list(self._subscribers):
            self._drop(subscriber)

    async def _watch_tokens(self) -> None:
        """While any stream is open: end those whose token was revoked or has expired."""
        while self._subscribers:
            await asyncio.sleep(self._token_check_s)
            holding = {s.token.id for s in self._subscribers}
            if not holding:
                break
            try:
                live = await to_thread.run_sync(self._tokens_live, holding)
            except Exception:  # the store busy or failing: keep the streams, check again next time
                log.exception("could not check the live streams' tokens")
                continue
            for subscriber in list(self._subscribers):
                if subscriber.token.id not in live:
                    log.info("token %s is revoked or expired: its alert stream ends", subscriber.token.id)
                    self._drop(subscriber)

    async def events(self, token: Token) -> AsyncIterator[str]:
        """The text/event-stream body for one client: `event: alert` per visible change, a `: keepalive`
        comment every `KEEPALIVE_S` (proxies close idle connections), until the client goes, falls
        behind, or its token is revoked or expires."""
        self._loop = asyncio.get_running_loop()
        try:
            self.check_room(token)  # again: two requests may both have passed the route's check
        except StreamLimitError as exc:
            yield f": {exc}\n\n"
            return
        subscriber = Subscriber(token)
        self._subscribers.add(subscriber)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch_tokens())
        try:
            yield ": connected\n\n"
            while not subscriber.dropped:
                try:
                    alert = await asyncio.wait_for(subscriber.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if alert is None or subscriber.dropped:
                    break
                registry = self._registry()
                await to_thread.run_sync(self._record_read, token, named_residents(registry, [alert]))
                yield f"event: alert\ndata: {AlertOut.of(alert, registry).model_dump_json()}\n\n"
        finally:
            self._subscribers.discard(subscriber)
