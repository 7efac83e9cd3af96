"""`/api/v1/registry/{table}`: read, create, update and deactivate registry entries in the running hub.

One set of routes per table (communities, compounds, buildings, grids, households, caregivers,
residents, devices), each with its entry's own schema. DELETE deactivates (`active: false`): entries
are never removed, so the readings and alerts that name them still resolve. Every change is checked as
a whole new registry, written to the registry file and swapped into the running hub (see
`hub.api.registry_editor`); a refused one changes nothing.

Scope: operators and device admins write, read-only tokens read, in their communities; an entry and
what it becomes must both lie in them. A caregiver is in the communities of the residents linked to it;
one no one lists yet is visible to every registry reader, so it can be created and then linked.
"""

# No `from __future__ import annotations` here: the routes are made per table, and FastAPI reads each
# endpoint's body type from its annotation at runtime.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from pydantic import ValidationError

from hub.api.auth import REGISTRY_READERS, REGISTRY_WRITERS, ScopeDep, require_role
from hub.api.deps import HubDep
from hub.api.errors import REFUSALS, conflict, forbidden, invalid, invalid_model, not_found
from hub.api.registry_editor import (
    TABLES,
    Allowed,
    Edit,
    EntryConflictError,
    EntryNotFoundError,
    RegistryEditor,
)
from hub.api.scope import Scope, registry_index
from hub.registry import Record, Registry

router = APIRouter(prefix="/api/v1/registry", tags=["registry"])

_WRITE_REFUSALS: dict[int | str, dict[str, Any]] = {
    **REFUSALS,
    409: {"description": "the id is taken, or an id was to change"},
    422: {"description": "the entry, or the registry it would make, is invalid: which field or reference"},
}


def _editor(request: Request) -> RegistryEditor:
    editor: RegistryEditor = request.app.state.registry_editor  # one per app: its lock serializes edits
    return editor


EditorDep = Annotated[RegistryEditor, Depends(_editor)]


def _outside(scope: Scope, communities: set[str], what: str) -> HTTPException:
    outside = ", ".join(sorted(c for c in communities if not scope.sees_community(c)))
    return forbidden(f"{what} is in community {outside}, outside {scope.who}'s communities")


def _scope_check(scope: Scope, table: str) -> Allowed:
    """Veto touching an entry outside the scope (as it is, and as it becomes). An entry in several
    communities (a caregiver) may be changed only by a token that sees all of them."""

    def check(entry: Record, registry: Registry) -> None:
        communities = registry_index(registry).communities_of(entry)
        if not scope.sees_all(communities):
            raise _outside(scope, communities, f"{table} {entry.id!r}")

    return check


def _write(edit: Callable[[], Edit]) -> Record:
    try:
        return edit().after
    except EntryNotFoundError as exc:
        raise not_found(str(exc).removeprefix("there is no ")) from None
    except EntryConflictError as exc:
        raise conflict(str(exc)) from None
    except ValidationError as exc:
        if all(error["loc"] == () for error in exc.errors()):
            # The whole registry refused it: the message names each entry, field and reference.
            raise invalid(("body",), "; ".join(error["msg"] for error in exc.errors())) from None
        raise invalid_model(exc) from None


def _table_routes(table: str, model: type[Record]) -> None:
    noun = table.removesuffix("s") if table != "communities" else "community"

    @router.get(f"/{table}", name=f"list_{table}", response_model=list[model], responses=REFUSALS)  # type: ignore[valid-type]
    def list_entries(hub: HubDep, scope: ScopeDep) -> list[Record]:
        require_role(scope.token, REGISTRY_READERS, "read the registry")
        registry = hub.registry
        index = registry_index(registry)
        return [e for e in getattr(registry.file, table) if scope.sees_any(index.communities_of(e))]

    @router.get(f"/{table}/{{entry_id}}", name=f"get_{noun}", response_model=model,
                responses={**REFUSALS, 404: {"description": f"no such {noun}"}})
    def get_entry(hub: HubDep, editor: EditorDep, scope: ScopeDep, entry_id: str) -> Record:
        require_role(scope.token, REGISTRY_READERS, "read the registry")
        try:
            entry = editor.find(table, entry_id)
        except EntryNotFoundError:
            raise not_found(f"{noun} {entry_id!r}") from None
        communities = registry_index(hub.registry).communities_of(entry)
        if not scope.sees_any(communities):
            raise _outside(scope, communities, f"{noun} {entry_id!r}")
        return entry

    @router.post(f"/{table}", name=f"create_{noun}", response_model=model,
                 status_code=status.HTTP_201_CREATED, responses=_WRITE_REFUSALS)
    def create_entry(editor: EditorDep, scope: ScopeDep, entry: model) -> Record:  # type: ignore[valid-type]
        require_role(scope.token, REGISTRY_WRITERS, "change the registry")
        return _write(lambda: editor.create(table, entry, _scope_check(scope, table)))

    @router.patch(f"/{table}/{{entry_id}}", name=f"update_{noun}", response_model=model,
                  responses={**_WRITE_REFUSALS, 404: {"description": f"no such {noun}"}})
    def update_entry(
        editor: EditorDep,
        scope: ScopeDep,
        entry_id: str,
        changes: Annotated[dict[str, Any], Body(description="fields to change, with their new values")],
    ) -> Record:
        require_role(scope.token, REGISTRY_WRITERS, "change the registry")
        return _write(lambda: editor.update(table, entry_id, changes, _scope_check(scope, table)))

    @router.delete(f"/{table}/{{entry_id}}", name=f"deactivate_{noun}", response_model=model,
                   responses={**_WRITE_REFUSALS, 404: {"description": f"no such {noun}"}})
    def deactivate_entry(editor: EditorDep, scope: ScopeDep, entry_id: str) -> Record:
        """Take the entry out of service (`active: false`); what is in service must not name it."""
        require_role(scope.token, REGISTRY_WRITERS, "change the registry")
        return _write(lambda: editor.update(table, entry_id, {"active": False}, _scope_check(scope, table)))


for _table, _model in TABLES.items():
    _table_routes(_table, _model)
