"""The read audit from the API's side: every response showing residents' data records who saw whose."""

from __future__ import annotations

from collections.abc import Sequence

from hub.api.scope import Scope
from hub.clock import SystemClock
from hub.store import ResidentRead, Store, StoreAt


def record_read(store_at: StoreAt, scope: Scope, what: str, residents: Sequence[str]) -> None:
    """Record that `scope`'s token was shown these residents' data (`what`: residents, activity, ...), at
    wall-clock time. Nothing shown, nothing recorded."""
    if not residents:
        return
    store = Store(store_at.path, url=store_at.url)
    try:
        token = scope.token
        store.record_read(ResidentRead(SystemClock().now_ms(), token.name, token.id, token.role.value, what,
                                       list(residents)))
    finally:
        store.close()
