"""`/api/v1/me`: who the token is, and what it sees now."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api.auth import ScopeDep
from hub.api.deps import RegistryDep
from hub.api.routes.alerts import REOPEN_ROLES
from hub.api.schemas import MeOut

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/me", responses={401: {"description": "no token, or an unknown or revoked one"}})
def me(registry: RegistryDep, scope: ScopeDep) -> MeOut:
    token = scope.token
    known = [c.id for c in registry.data.communities]
    communities = known if scope.communities is None else [c for c in known if c in scope.communities]
    return MeOut(token_id=token.id, name=token.name, role=token.role.value, caregiver=token.caregiver,
                 communities=communities, all_communities=token.all_communities,
                 may_reopen=token.role in REOPEN_ROLES,
                 places={level: list(ids) for level, ids in token.places().items()})
