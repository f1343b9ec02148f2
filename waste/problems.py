"""Map errors to RFC 9457 problem-details responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from waste.errors import Invalid, Unavailable, WasteError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("waste.api")


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem-details JSON response."""
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(WasteError)
    async def _waste_error(_: Request, exc: WasteError) -> JSONResponse:
        headers = None
        if exc.status in (429, 503):
            headers = {"Retry-After": str(exc.extra.get("retry_after", 5))}
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return problem_response(exc.problem(), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return problem_response(
            {
                "type": "https://waste-custody.org/problems/invalid",
                "title": "Invalid input",
                "status": 422,
                "detail": f"{first['field']}: {first['message']}",
                "errors": errors,
            }
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # the framework could not parse the body: malformed input
            return problem_response(Invalid(f"body: {exc.detail}", field="body").problem())
        return problem_response(
            {
                "type": "about:blank",
                "title": str(exc.detail),
                "status": exc.status_code,
                "detail": str(exc.detail),
            },
            dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            log.warning("database unavailable: %s", str(exc.orig).splitlines()[0][:200])
            err = Unavailable("the database is unavailable; retry later")
            return problem_response(err.problem(), {"Retry-After": "5"})
        if isinstance(exc, DataError):  # e.g. a NUL character PostgreSQL cannot store or match
            log.warning("value refused by the database: %s", str(exc.orig).splitlines()[0][:200])
            invalid = Invalid(
                "a value the database cannot hold (a NUL character, a number out of range)"
            )
            return problem_response(invalid.problem())
        return _internal(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _internal(exc)

    _document(app)


def _internal(exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(
        {
            "type": "https://waste-custody.org/problems/internal",
            "title": "Internal error",
            "status": 500,
            "detail": "an internal error occurred; it has been logged",
        }
    )


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `errors` names the offending fields.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "retry_after": {"type": "integer", "description": "429: seconds until a retry"},
    },
}
_PROBLEMS = {
    "401": "No token, or a bad, expired or revoked one",
    "403": "This role or party may not do this",
    "404": "No such resource, or not visible to the caller",
    "409": "Exists already, or changed meanwhile",
    "422": "Invalid input; `errors` names the fields",
    "429": "Too many failed authentications from this address; see Retry-After",
    "503": "The database is unavailable; see Retry-After",
}
_SECURED_ONLY = frozenset({"401", "403", "429"})
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def _document(app: FastAPI) -> None:
    """Declare the problem responses of every operation in the OpenAPI schema."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for item in schema.get("paths", {}).values():
            for method, operation in item.items():
                if method not in _METHODS:
                    continue
                responses = operation.setdefault("responses", {})
                for status, description in _PROBLEMS.items():
                    if status in _SECURED_ONLY and "security" not in operation:
                        continue
                    declared = responses.setdefault(status, {"description": description})
                    declared["content"] = problem
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
