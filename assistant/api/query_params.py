"""Query parameters an operation does not take are refused (422), not ignored.

``GET /api/v1/sensors/P-101-FLOW/series?hours=6`` used to answer the default 24 hours as if
``hours`` had been read. Every /api/v1 and /v1 operation now checks the request's query keys
against the ones it declares (its own and its dependencies'), and names the accepted ones.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from assistant.scope_check import UnknownNameError


def accepted_query_params(route: APIRoute) -> list[str]:
    """The query parameter names ``route`` reads (aliases, e.g. 'from'), cached on the route."""
    cached = getattr(route, "_onsite_query_params", None)
    if cached is None:
        cached = sorted(set(_query_aliases(route.dependant)))
        route._onsite_query_params = cached  # type: ignore[attr-defined]
    return cached


def _query_aliases(dependant: Dependant) -> list[str]:
    names = [f.alias for f in dependant.query_params]
    for sub in dependant.dependencies:
        names += _query_aliases(sub)
    return names


def reject_unknown_query(request: Request) -> None:
    """A router dependency: 422 ``unknown_query_parameter`` for the first key the route does not take."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    accepted = accepted_query_params(route)
    unknown = [k for k in dict.fromkeys(request.query_params.keys()) if k not in accepted]
    if unknown:
        raise UnknownNameError(f"query.{unknown[0]}", unknown[0], accepted, "query parameter",
                               error_kind="unknown_query_parameter")
