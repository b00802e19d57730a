"""One JSON error shape, ``{"error": {"type", "message", "details"}}``, for every 4xx/5xx."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

import bandit_router as br

__all__ = ["STATUS", "error_response", "install", "malformed_json"]

log = logging.getLogger("feedback_api")

#: Library error -> HTTP status. Subclasses are looked up along their MRO.
STATUS: dict[type[br.BanditRouterError], int] = {
    br.InvalidInputError: 422,
    br.DuplicateEventError: 409,
    br.NoEligibleModelError: 422,
    br.UnknownEventError: 404,
    br.UnknownModelError: 404,
    br.DuplicateRewardError: 409,
    br.RewardWindowClosedError: 410,
    br.BudgetExceededError: 429,  # 402 for a per-request limit: waiting does not help
}
_HTTP_TYPES = {401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFound",
               405: "MethodNotAllowed", 408: "RequestTimeoutError", 413: "PayloadTooLargeError",
               429: "RateLimitError"}


def error_response(status: int, type_: str, message: str,
                   details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "message": message, "details": details}},
                        status_code=status, headers=headers)


def _status_of(exc: br.BanditRouterError) -> int:
    if isinstance(exc, br.BudgetExceededError) and exc.window == "request":
        return 402
    mro = type(exc).__mro__
    if isinstance(exc, br.InvalidInputError):  # bad input first, whatever else it is,
        # by its most specific kind of bad input (a duplicate event id: 409)
        mro = tuple(cls for cls in mro if issubclass(cls, br.InvalidInputError))
    for cls in mro:
        if cls in STATUS:
            return STATUS[cls]
    return 400


async def _library(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, br.BanditRouterError)
    details: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    if isinstance(exc, br.BudgetExceededError):
        details = {"scope": exc.scope, "window": exc.window, "limit_usd": exc.limit_usd,
                   "used_usd": exc.used_usd, "resets_at": exc.resets_at,
                   "needed_usd": exc.needed_usd}
        if exc.resets_at is not None:
            headers = {"Retry-After": str(max(1, math.ceil(exc.resets_at - time.time())))}
    elif isinstance(exc, br.NoEligibleModelError):
        details = {"reasons": exc.reasons}
    elif isinstance(exc, br.RewardWindowClosedError):
        details = {"event_id": exc.event_id, "wait_s": exc.wait_s}
    elif isinstance(exc, br.UnknownEventError | br.DuplicateRewardError
                    | br.DuplicateEventError):
        details = {"event_id": exc.event_id}
    name = next(c.__name__ for c in type(exc).__mro__ if not c.__name__.startswith("_"))
    return error_response(_status_of(exc), name, str(exc), details, headers)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
              for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    if first.get("type") == "json_invalid":  # not JSON at all: say so, as a 400
        at = first["loc"][-1] if first["loc"] else "?"
        return malformed_json(f"the body is not valid JSON (at character {at}: "
                              f"{exc.errors()[0].get('ctx', {}).get('error', first['msg'])})")
    where = ".".join(str(p) for p in first["loc"])
    return error_response(422, _library_class(request.url.path, list(first["loc"])),
                          f"{where}: {first['msg']}", {"errors": errors})


def _library_class(path: str, loc: list[Any]) -> str:
    """The library error an invalid body stands for, so typed clients can tell them apart."""
    if path.endswith("/reward"):
        return "InvalidRewardError"
    if path.endswith("/pricing"):
        return "CatalogError"
    if path.endswith("/select"):
        return "InvalidConstraintsError" if "constraints" in loc else "InvalidTaskError"
    return "InvalidInputError"


#: FastAPI's detail when the body could not be decoded at all (json.loads raised)
_UNREADABLE = "There was an error parsing the body"


def malformed_json(message: str) -> JSONResponse:
    """400 ``MalformedJSONError``: a body that is not JSON at all."""
    return error_response(400, "MalformedJSONError", message)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNREADABLE:
        return malformed_json("the body could not be read as JSON: invalid UTF-8, nesting "
                              "too deep, or a number too long")
    return error_response(exc.status_code, _HTTP_TYPES.get(exc.status_code, "HTTPError"),
                          str(exc.detail), headers=getattr(exc, "headers", None))


async def _database(_: Request, exc: Exception) -> JSONResponse:
    """The database did not answer in time (locked, down, restarting): 503, try again soon.
    Nothing the request would have written was acknowledged."""
    log.warning("database unavailable: %s", str(exc).splitlines()[0][:300])
    return error_response(503, "DatabaseUnavailableError",
                          "the database is unavailable or busy; retry shortly",
                          headers={"Retry-After": "1"})


async def _internal(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "InternalServerError", "internal server error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(br.BanditRouterError, _library)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    for unavailable in (OperationalError, InterfaceError):
        app.add_exception_handler(unavailable, _database)
    app.add_exception_handler(Exception, _internal)
