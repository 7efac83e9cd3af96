"""Registry edits through the API: each one checked as a whole new registry file, written, then swapped
into the running hub.

Order matters for "nothing half-written": check the caller may touch the entry as it is, validate the
complete new file (every reference resolves, nothing in service stands on something deactivated), check
the caller may touch the entry as it becomes, write the file atomically and durably, and only then swap
it into the hub; a refused or failed edit leaves both the file and the running hub as they were. Edits
are serialized by one lock, so two concurrent edits never both start from the same old registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
    """Edits the registry file and swaps it in; every edit is recorded in the store's `registry_audit`
    (who, when, the entry before and after) before the file is written, and forgotten if that fails."""

    def __init__(self, path: Path, current: Callable[[], Registry], swap: Callable[[Registry], None],
                 store_at: StoreAt) -> None:
        self.path = path
        self._current = current
        self._swap = swap
        self._store_at = store_at
        self._lock = threading.Lock()

    @property
    def lock(self) -> threading.Lock:
        """Held for an edit made outside `create`/`update` (a resident's erasure) with `replace`."""
        return self._lock

    def current(self) -> Registry:
        return self._current()

    def replace(self, file: RegistryFile) -> Registry:
        """Write a whole new registry file and swap it in (hold `lock`). Not recorded in the registry
        audit: its caller keeps its own record (an erasure must not copy the entry it erases there)."""
        registry = Registry(file)
        registry.dump(self.path)
        self._swap(registry)
        return registry

    def find(self, table: str, wanted: str) -> Record:
        for entry in getattr(self._current().file, table):
            if entry.id == wanted:
                found: Record = entry
                return found
        raise EntryNotFoundError(f"there is no {table} entry {wanted!r}")

    def create(self, table: str, entry: Record, allowed: Allowed, editor: Editor) -> Edit:
        with self._lock:
            registry = self._current()
            new_id = entry.id
            if any(e.id == new_id for e in getattr(registry.file, table)):
                raise EntryConflictError(f"{table} already has an entry {new_id!r} (ids are never reused)")
            return self._commit(table, None, entry, [*getattr(registry.file, table), entry], allowed,
                                audit=Audit(editor, "create"))

    def update(self, table: str, wanted: str, changes: dict[str, Any], allowed: Allowed,
               editor: Editor, *, found: Allowed | None = None) -> Edit:
        """Apply `changes` (field → new value, JSON merge-patch style) to one entry. Raises
        ValidationError for an entry the changes make invalid. `found` may veto the entry as it is
        before `allowed` does (the API answers an entry its caller does not see as absent)."""
        with self._lock:
            registry = self._current()
            before = self.find(table, wanted)
            if found is not None:
                found(before, registry)
            allowed(before, registry)
            if "id" in changes and changes["id"] != wanted:
                raise EntryConflictError(f"an entry's id cannot change ({wanted!r} → {changes['id']!r});"
                                    " deactivate it and create a new one")
            after = TABLES[table].model_validate({**before.model_dump(), **changes})
            entries = [after if e.id == wanted else e for e in getattr(registry.file, table)]
            action = "deactivate" if changes == {"active": False} else "update"
            return self._commit(table, before, after, entries, allowed, audit=Audit(editor, action))

    def _commit(self, table: str, before: Record | None, after: Record, entries: list[Record],
                allowed: Allowed, *, audit: Audit) -> Edit:
        """Validate the whole new file, let `allowed` veto the entry in it, audit it, write it, then swap
        it in."""
        data = self._current().file.model_dump()
        data[table] = [e.model_dump() for e in entries]
        registry = Registry(RegistryFile.model_validate(data))  # ValidationError: a broken reference
        allowed(after, registry)
        store = Store(self._store_at.path, url=self._store_at.url)
        try:
            audit_id = store.record_registry_edit(RegistryEdit(
                int(time.time() * 1000), audit.editor.name, audit.editor.token_id, audit.editor.role, table,
                after.id, audit.action, None if before is None else before.model_dump(mode="json"),
                after.model_dump(mode="json")))
            try:
                registry.dump(self.path)
            except BaseException:
                store.forget_registry_edit(audit_id)
                raise
        finally:
            store.close()
        self._swap(registry)
        return Edit(before, after, registry)


@dataclass(frozen=True, slots=True)
class Audit:
    editor: Editor
    action: str
