"""The read audit from the API's side: every response showing residents' data records who saw whose.

An alert shows its resident's name (everyone in the household, for a household alert) beside its ids, so
a response carrying alerts is a read of those residents' data, recorded like a resident list: one row per
request (per event on the live stream), listing the residents named.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hub.alerts.directory import alert_labels
from hub.alerts.model import Alert
from hub.api.scope import Scope
from hub.api.tokens import Token
from hub.clock import SystemClock
from hub.registry import Registry
from hub.store import ResidentRead, Store, StoreAt


def record_read(store_at: StoreAt, scope: Scope, what: str, residents: Sequence[str]) -> None:
    """Record that `scope`'s token was shown these residents' data (`what`: residents, activity, ...), at
    wall-clock time. Nothing shown, nothing recorded."""
    record_token_read(store_at, scope.token, what, residents)


def record_token_read(store_at: StoreAt, token: Token, what: str, residents: Sequence[str]) -> None:
    """`record_read` where there is a token and no request's scope (the live stream)."""
    if not residents:
        return
    store = Store(store_at.path, url=store_at.url)
    try:
        store.record_read(ResidentRead(SystemClock().now_ms(), token.name, token.id, token.role.value, what,
                                       list(residents)))
    finally:
        store.close()


def named_residents(registry: Registry, alerts: Iterable[Alert]) -> list[str]:
    """The residents whose names these alerts show (`names.resident`), each once, in order."""
    return list(dict.fromkeys(r.id for alert in alerts for r in alert_labels(registry, alert).residents))
