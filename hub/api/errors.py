"""Refusals in the API's one shape: FastAPI's own 422 body (`detail: [{loc, msg, type, input}]`) for bad
input, whether FastAPI found it or a check here did, so a client reads every refusal the same way."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

# For the OpenAPI document: the refusals every `/api/v1` route can answer with.
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no token, or an unknown or revoked one (`WWW-Authenticate: Bearer`)"},
    403: {"description": "outside the token's role; the detail says what (out-of-scope ids are 404)"},
}


def invalid(loc: tuple[str | int, ...], msg: str, value: Any = None) -> RequestValidationError:
    """422: the input at `loc` (e.g. ("query", "kind"), ("body", "to")) is wrong, and why."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


def invalid_model(exc: ValidationError, prefix: tuple[str | int, ...] = ("body",)) -> RequestValidationError:
    """422 from a model validated by hand (a merged PATCH, a whole registry), each error at its field."""
    return RequestValidationError([
        {**error, "loc": (*prefix, *error["loc"])}
        for error in exc.errors(include_url=False, include_context=False)
    ])


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"there is no {what}")


def forbidden(why: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, why)


def conflict(why: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, why)
