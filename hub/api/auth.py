"""Bearer-token authentication for `/api/v1`: `Authorization: Bearer <token>` from `hub tokens create`.

Each request looks its token up by hash in the store (read-only connection), so a token created or
revoked by the CLI counts at once. A missing, unknown, revoked or expired token is a 401 with
`WWW-Authenticate: Bearer`; a known token asking for what its role or scope does not allow, a 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.api.deps import RegistryDep, StoreDep
from hub.api.errors import forbidden
from hub.api.scope import Scope
from hub.api.tokens import Role, Token, TokenStore
from hub.clock import SystemClock

_bearer = HTTPBearer(auto_error=False, description="a token from `hub tokens create`")

# May acknowledge, assign, resolve.
ACTING_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.CAREGIVER, Role.GRID_WORKER})
REGISTRY_READERS = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.GRID_WORKER, Role.DEVICE_ADMIN,
                              Role.READ_ONLY})
REGISTRY_WRITERS = frozenset({Role.OPERATOR, Role.DEVICE_ADMIN})


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, why, headers={"WWW-Authenticate": "Bearer"})


def authenticated(
    store_at: StoreDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Token:
    if credentials is None:
        raise _unauthorized("this needs an `Authorization: Bearer <token>` header (`hub tokens create`)")
    store = TokenStore(store_at.path, read_only=True, url=store_at.url)
    try:
        token = store.lookup(credentials.credentials, SystemClock().now_ms())  # expiry is wall-clock time
    finally:
        store.close()
    if token is None:
        raise _unauthorized("unknown, revoked or expired token")
    return token


TokenDep = Annotated[Token, Depends(authenticated)]


def scope_of(registry: RegistryDep, token: TokenDep) -> Scope:
    return Scope.of(token, registry)


ScopeDep = Annotated[Scope, Depends(scope_of)]


def require_role(token: Token, roles: frozenset[Role], doing: str) -> None:
    if token.role not in roles:
        allowed = ", ".join(sorted(role.value for role in roles))
        raise forbidden(f"a {token.role.value} token may not {doing} (that takes: {allowed})")


def actor(token: Token) -> str:
    """Who the audit history records: a caregiver (or a grid worker bound to its caregiver) by its registry
    id, anyone else by the token's name."""
    return token.caregiver or token.name
