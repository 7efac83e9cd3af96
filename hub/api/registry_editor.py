"""Registry edits through the API: each one checked as a whole new registry, written where the registry
is kept (its file, or a new version in PostgreSQL: `hub.registry_sources`), then swapped into the
running hub.

Order matters for "nothing half-written": check the caller may touch the entry as it is, validate the
complete new registry (every reference resolves, nothing in service stands on something deactivated),
check the caller may touch the entry as it becomes, write it (the file atomically and durably, or the
version in one transaction), and only then swap it into the hub; a refused or failed edit leaves both
what is kept and the running hub as they were. Edits are serialized (by one lock in a process, and by
PostgreSQL's advisory lock across nodes), so two concurrent edits never both start from the same old
registry: the second is applied on top of the first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.registry import (
    Building,
    Caregiver,
    City,
    Community,
    Compound,
    Device,
    District,
    Grid,
    Household,
    Record,
    Registry,
    RegistryFile,
    Resident,
    Subdistrict,
)
from hub.registry_sources import RegistrySource
from hub.store import RegistryEdit, Store, StoreAt

TABLES: dict[str, type[Record]] = {
    "cities": City,
    "districts": District,
    "subdistricts": Subdistrict,
    "communities": Community,
    "compounds": Compound,
    "buildings": Building,
    "grids": Grid,
    "households": Household,
    "caregivers": Caregiver,
    "residents": Resident,
    "devices": Device,
}


class EntryNotFoundError(LookupError):
    pass


class EntryConflictError(ValueError):
    """The edit contradicts what is there (an id taken, an id changed); the message says how."""


# Vetoes an edit by raising: may the caller touch this entry, placed as in this registry?
Allowed = Callable[[Record, Registry], None]


@dataclass(frozen=True, slots=True)
class Edit:
    """A done edit: the entry before (None when created) and after, and the registry now in service."""

    before: Record | None
    after: Record
    registry: Registry


@dataclass(frozen=True, slots=True)
class Editor:
    """Who makes an edit, for the audit."""

    name: str
    token_id: str
    role: str


class RegistryEditor:
    """Edits the registry where it is kept (`RegistrySource`: its file, or its versions in PostgreSQL) and
    swaps it in; every edit is recorded in the store's `registry_audit` (who, when, the entry before and
    after) before the registry is written, and forgotten if that fails. Each edit is worked out on the
    newest registry, inside the source's write: on PostgreSQL, one another node wrote a moment ago."""

    def __init__(self, source: RegistrySource, current: Callable[[], Registry], store_at: StoreAt) -> None:
        self._source = source
        self._current = current
        self._store_at = store_at
        self._lock = threading.Lock()

    @property
    def lock(self) -> threading.Lock:
        """Held for an edit made outside `create`/`update` (a resident's erasure) with `replace`."""
        return self._lock

    def current(self) -> Registry:
        return self._current()

    def replace(self, change: Callable[[RegistryFile], RegistryFile], *, actor: str, what: str) -> Registry:
        """Write the registry `change` makes of the newest one, and swap it in (hold `lock`). For an
        erasure: no earlier copy of the registry is kept, and it is not recorded in the registry audit
        (its caller keeps its own record, which must not copy the entry it erases there)."""
        return self._source.write(lambda registry: Registry(change(registry.file)), actor=actor, what=what,
                                  erasing=True)

    def find(self, table: str, wanted: str) -> Record:
        return _find(self._current(), table, wanted)

    def create(self, table: str, entry: Record, allowed: Allowed, editor: Editor) -> Edit:
        def change(registry: Registry) -> Edit:
            new_id = entry.id
            if any(e.id == new_id for e in getattr(registry.file, table)):
                raise EntryConflictError(f"{table} already has an entry {new_id!r} (ids are never reused)")
            return _changed(registry, table, [*getattr(registry.file, table), entry], before=None,
                            after=entry, allowed=allowed)

        return self._commit(table, entry.id, change, Audit(editor, "create"))

    def update(self, table: str, wanted: str, changes: dict[str, Any], allowed: Allowed,
               editor: Editor, *, found: Allowed | None = None) -> Edit:
        """Apply `changes` (field → new value, JSON merge-patch style) to one entry. Raises
        ValidationError for an entry the changes make invalid. `found` may veto the entry as it is
        before `allowed` does (the API answers an entry its caller does not see as absent)."""
        def change(registry: Registry) -> Edit:
            before = _find(registry, table, wanted)
            if found is not None:
                found(before, registry)
            allowed(before, registry)
            if "id" in changes and changes["id"] != wanted:
                raise EntryConflictError(f"an entry's id cannot change ({wanted!r} → {changes['id']!r});"
                                         " deactivate it and create a new one")
            after = TABLES[table].model_validate({**before.model_dump(), **changes})
            entries = [after if e.id == wanted else e for e in getattr(registry.file, table)]
            return _changed(registry, table, entries, before=before, after=after, allowed=allowed)

        action = "deactivate" if changes == {"active": False} else "update"
        return self._commit(table, wanted, change, Audit(editor, action))

    def _commit(self, table: str, entry_id: str, change: Callable[[Registry], Edit], audit: Audit) -> Edit:
        """Write the registry `change` makes of the newest one, the edit audited first (and forgotten
        if the write fails), then swap it in."""
        done: list[Edit] = []
        audit_ids: list[int] = []
        store = Store(self._store_at.path, url=self._store_at.url)

        def audited(registry: Registry) -> Registry:
            edit = change(registry)
            audit_ids.append(store.record_registry_edit(RegistryEdit(
                int(time.time() * 1000), audit.editor.name, audit.editor.token_id, audit.editor.role, table,
                edit.after.id, audit.action,
                None if edit.before is None else edit.before.model_dump(mode="json"),
                edit.after.model_dump(mode="json"))))
            done.append(edit)
            return edit.registry

        try:
            with self._lock:
                self._source.write(audited, actor=audit.editor.name,
                                   what=f"{audit.action} {table} {entry_id}")
        except BaseException:
            for audit_id in audit_ids:
                store.forget_registry_edit(audit_id)
            raise
        finally:
            store.close()
        return done[-1]


def _find(registry: Registry, table: str, wanted: str) -> Record:
    for entry in getattr(registry.file, table):
        if entry.id == wanted:
            found: Record = entry
            return found
    raise EntryNotFoundError(f"there is no {table} entry {wanted!r}")


def _changed(registry: Registry, table: str, entries: list[Record], *, before: Record | None, after: Record,
             allowed: Allowed) -> Edit:
    """The edit that makes `entries` the table's: the whole new registry validated, and `allowed` given
    a veto on the entry in it."""
    data = registry.file.model_dump()
    data[table] = [e.model_dump() for e in entries]
    changed = Registry(RegistryFile.model_validate(data))  # ValidationError: a broken reference
    allowed(after, changed)
    return Edit(before, after, changed)


@dataclass(frozen=True, slots=True)
class Audit:
    editor: Editor
    action: str
