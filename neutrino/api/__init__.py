"""HTTP only: routes, request and response shapes, error rendering."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from neutrino.context import Context

Authenticate = Callable[[Request], Awaitable[Context]]  # a request's caller, or a refusal
