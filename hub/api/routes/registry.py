"""`/api/v1/registry/{table}`: read, create, update and deactivate registry entries in the running hub.

One set of routes per table (communities, compounds, buildings, grids, households, caregivers,
residents, devices), each with its entry's own schema. DELETE deactivates (`active: false`): entries
are never removed, so the readings and alerts that name them still resolve. Every change is checked as
a whole new registry, written to the registry file and swapped into the running hub (see
`hub.api.registry_editor`); a refused one changes nothing.

Scope: operators write every table, device admins the devices only (what installing them needs), and
read-only tokens read, in their communities; an entry and what it becomes must both lie in them. A
caregiver belongs to one community, is seen there only, and is linked only to residents there. Notify
URLs must pass the allow-list in the settings (`hub.alerts.notify_urls`) and are shown by their scheme
only. Every edit is audited in the store (`registry_audit`: who, when, before, after).
"""

# No `from __future__ import annotations` here: the routes are made per table, and FastAPI reads each
# endpoint's body type from its annotation at runtime.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from pydantic import ValidationError

from hub.alerts.notify_urls import NotifyUrlPolicy, redact
from hub.api.audit import record_read
from hub.api.auth import ACTING_ROLES, REGISTRY_READERS, REGISTRY_WRITERS, ScopeDep, require_role
from hub.api.deps import RegistryDep, SettingsDep, StoreDep
from hub.api.errors import REFUSALS, conflict, forbidden, invalid, invalid_model, not_found
from hub.api.places import PlacesDep
from hub.api.registry_editor import (
    TABLES,
    Allowed,
    Edit,
    Editor,
    EntryConflictError,
    EntryNotFoundError,
    RegistryEditor,
)
from hub.api.scope import Scope
from hub.api.tokens import Role
from hub.registry import Caregiver, Record, Registry, Resident
from hub.settings import Settings

# What a device admin may change: devices, placed in the homes and buildings that are there.
DEVICE_ADMIN_TABLES = frozenset({"devices"})

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
        communities = registry.hierarchy.communities_of(entry)
        if not scope.sees_all(communities):
            raise _outside(scope, communities, f"{table} {entry.id!r}")

    return check


def _found_check(scope: Scope, table: str) -> Allowed:
    """An entry the token does not see is answered exactly as an absent one (404, the same words), never
    with a 403 that would confirm that the id exists in another community."""

    def check(entry: Record, registry: Registry) -> None:
        if not scope.sees_any(registry.hierarchy.communities_of(entry)):
            raise EntryNotFoundError(f"there is no {table} entry {entry.id!r}")

    return check


def _may_write(scope: Scope, table: str) -> None:
    require_role(scope.token, REGISTRY_WRITERS, "change the registry")
    if scope.token.role is Role.DEVICE_ADMIN and table not in DEVICE_ADMIN_TABLES:
        raise forbidden(f"a device_admin token changes devices only (and what installing them needs), "
                        f"not {table}: that takes an operator token")


def _links_in_scope(scope: Scope, registry: Registry, links: object) -> None:
    """A resident may be linked only to caregivers the token sees: linking another community's caregiver
    would show it that caregiver's phone and notify URLs."""
    if not isinstance(links, list):
        return  # not a list of links: the model refuses it (422)
    community_of = {cg.id: cg.community for cg in registry.file.caregivers}
    for link in links:
        caregiver = link.get("caregiver") if isinstance(link, dict) else getattr(link, "caregiver", None)
        community = community_of.get(caregiver) if isinstance(caregiver, str) else None
        if community is not None and not scope.sees_community(community):
            raise forbidden(f"caregiver {caregiver!r} is in community {community}, outside {scope.who}'s "
                            "communities")


def _notify_allowed(policy: NotifyUrlPolicy, urls: object) -> None:
    if not isinstance(urls, list):
        return
    for i, url in enumerate(urls):
        problem = policy.problem(url) if isinstance(url, str) else None
        if problem is not None:
            raise invalid(("body", "notify", i), problem, redact(url))


def _shown(entry: Record, scope: Scope) -> Record:
    """An entry as the API shows it: a caregiver's notify URLs by their scheme only (the rest is a key),
    and its phone and notify URLs not at all to roles that do not act on alerts (read_only, device_admin):
    contact details are for those who call; a resident's health flags neither."""
    if isinstance(entry, Resident) and scope.token.role not in ACTING_ROLES:
        # Health flags and the phone are for those who act on them: shown empty to read_only and
        # device_admin.
        return entry.model_copy(update={"flags": [], "wandering_risk": False, "phone": ""})
    if not isinstance(entry, Caregiver):
        return entry
    if scope.token.role not in ACTING_ROLES:
        return entry.model_copy(update={"phone": "", "notify": []})
    if entry.notify:
        return entry.model_copy(update={"notify": [redact(url) for url in entry.notify]})
    return entry


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _editor_of(scope: Scope) -> Editor:
    return Editor(scope.token.name, scope.token.id, scope.token.role.value)


def _write(edit: Callable[[], Edit], scope: Scope) -> Record:
    try:
        return _shown(edit().after, scope)
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
    noun = {"cities": "city", "communities": "community"}.get(table, table.removesuffix("s"))

    @router.get(f"/{table}", name=f"list_{table}", response_model=list[model], responses=REFUSALS)  # type: ignore[valid-type]
    def list_entries(registry: RegistryDep, store_at: StoreDep, scope: ScopeDep,
                     places: PlacesDep) -> list[Record]:
        require_role(scope.token, REGISTRY_READERS, "read the registry")
        shown = [_shown(e, scope) for e in getattr(registry.file, table)
                 if scope.sees_entry(e) and places.matches(registry.hierarchy.levels_of(e))]
        if table == "residents":
            record_read(store_at, scope, "registry", [e.id for e in shown])
        return shown

    @router.get(f"/{table}/{{entry_id}}", name=f"get_{noun}", response_model=model,
                responses={**REFUSALS, 404: {"description": f"no such {noun}"}})
    def get_entry(registry: RegistryDep, store_at: StoreDep, editor: EditorDep, scope: ScopeDep,
                  entry_id: str) -> Record:
        require_role(scope.token, REGISTRY_READERS, "read the registry")
        try:
            entry = editor.find(table, entry_id)
        except EntryNotFoundError:
            raise not_found(f"{noun} {entry_id!r}") from None
        if not scope.sees_entry(entry):
            raise not_found(f"{noun} {entry_id!r}")  # as if absent: a 403 would confirm that it exists
        if table == "residents":
            record_read(store_at, scope, "registry", [entry.id])
        return _shown(entry, scope)

    @router.post(f"/{table}", name=f"create_{noun}", response_model=model,
                 status_code=status.HTTP_201_CREATED, responses=_WRITE_REFUSALS)
    def create_entry(registry: RegistryDep, settings: SettingsDep, editor: EditorDep, scope: ScopeDep,
                     entry: model) -> Record:  # type: ignore[valid-type]
        _may_write(scope, table)
        record: Record = entry
        _checked(registry, settings, scope, record.model_dump())
        return _write(lambda: editor.create(table, record, _scope_check(scope, table), _editor_of(scope)),
                      scope)

    @router.patch(f"/{table}/{{entry_id}}", name=f"update_{noun}", response_model=model,
                  responses={**_WRITE_REFUSALS, 404: {"description": f"no such {noun}"}})
    def update_entry(  # noqa: PLR0917 - FastAPI passes dependencies and parameters by name
        registry: RegistryDep,
        settings: SettingsDep,
        editor: EditorDep,
        scope: ScopeDep,
        entry_id: str,
        changes: Annotated[dict[str, Any], Body(description="fields to change, with their new values")],
    ) -> Record:
        _may_write(scope, table)
        _checked(registry, settings, scope, changes)
        return _write(lambda: editor.update(table, entry_id, changes, _scope_check(scope, table),
                                            _editor_of(scope), found=_found_check(scope, table)), scope)

    @router.delete(f"/{table}/{{entry_id}}", name=f"deactivate_{noun}", response_model=model,
                   responses={**_WRITE_REFUSALS, 404: {"description": f"no such {noun}"}})
    def deactivate_entry(editor: EditorDep, scope: ScopeDep, entry_id: str) -> Record:
        """Take the entry out of service (`active: false`); what is in service must not name it."""
        _may_write(scope, table)
        return _write(lambda: editor.update(table, entry_id, {"active": False}, _scope_check(scope, table),
                                            _editor_of(scope), found=_found_check(scope, table)), scope)

    def _checked(registry: Registry, settings: Settings, scope: Scope, fields: dict[str, Any]) -> None:
        """Checks on what a create or update sets, before the editor builds the new registry."""
        for name, value in fields.items():
            if _holds_nul(value):
                # No registry text needs one, and PostgreSQL, where the registry may be kept, cannot
                # store one: refused as the API refuses one in a path.
                raise invalid(("body", name), "NUL characters are not allowed")
        if model is Resident and "caregivers" in fields:
            _links_in_scope(scope, registry, fields["caregivers"])
        if model is Caregiver and "notify" in fields:
            policy = NotifyUrlPolicy(tuple(settings.notify_allow), settings.notify_allow_private)
            _notify_allowed(policy, fields["notify"])


for _table, _model in TABLES.items():
    _table_routes(_table, _model)
