"""The dashboard's way to the public APIs: HTTP requests dispatched in-process.

Every page and action is an ordinary call of the identity, networking, lab
(and load-balancer) APIs with the signed-in user's token, so the dashboard
sees exactly what that user may see and nothing more. The requests go to the
same ASGI application without a socket; the catalog of the user's token
says where each service lives.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from starlette.types import ASGIApp


class ApiError(Exception):
    """A failed call, carrying the message its API gave (never a stack trace) and, from the
    networking API, the error's type (`OverQuota`)."""

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def api_error(response: httpx.Response) -> ApiError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        return ApiError(status, f"{status} {response.reason_phrase}")
    if isinstance(body, dict):
        for key in ("NeutronError", "error", "faultstring", "description"):
            inner = body.get(key)
            if isinstance(inner, dict):
                message = inner.get("message") or inner.get("title") or inner
                return ApiError(status, str(message), str(inner.get("type", "")))
            if isinstance(inner, str):
                return ApiError(status, inner)
    return ApiError(status, str(body))


def service_paths(catalog: list[dict[str, Any]]) -> dict[str, str]:
    """Service type -> path prefix of its public endpoint (e.g. network -> /networking)."""
    paths = {}
    for service in catalog:
        for endpoint in service.get("endpoints", []):
            if endpoint.get("interface") == "public":
                paths[service["type"]] = urlsplit(endpoint["url"]).path.rstrip("/")
    return paths


class Http:
    """One shared in-process HTTP client of the application the dashboard is part of."""

    def __init__(self, app: ASGIApp) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(
            transport=transport, base_url="http://dashboard.internal", timeout=600
        )

    async def send(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {**({"X-Auth-Token": token} if token else {}), **kwargs.pop("headers", {})}
        # Paths are made of raw values (IDs, names from forms): each character is sent as itself.
        return await self.client.request(method, quote(path), headers=headers, **kwargs)

    async def login(
        self, user: str, password: str, project: str | None, domain: str = "Default"
    ) -> httpx.Response:
        auth: dict[str, Any] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "password": password, "domain": {"name": domain}}
                },
            }
        }
        if project:
            auth["scope"] = {"project": {"name": project, "domain": {"name": domain}}}
        return await self.send("POST", "/identity/v3/auth/tokens", json={"auth": auth})

    async def rescope(self, token: str, project_id: str) -> httpx.Response:
        auth = {
            "identity": {"methods": ["token"], "token": {"id": token}},
            "scope": {"project": {"id": project_id}},
        }
        return await self.send("POST", "/identity/v3/auth/tokens", json={"auth": auth})


class Api:
    """The APIs as one user sees them: `await api.get("network", "/v2.0/networks")`."""

    def __init__(self, http: Http, token: str, paths: dict[str, str]) -> None:
        self.http = http
        self.token = token
        self.paths = paths

    async def request(self, method: str, service: str, path: str, **kwargs: Any) -> Any:
        if service not in self.paths:
            raise ApiError(404, f"The {service} service is not in this cloud's catalog.")
        response = await self.http.send(method, self.paths[service] + path, self.token, **kwargs)
        if response.status_code >= 400:
            raise api_error(response)
        return response.json() if response.content else None

    async def get(self, service: str, path: str, **params: Any) -> Any:
        return await self.request("GET", service, path, params=params)

    async def post(self, service: str, path: str, body: Any = None) -> Any:
        return await self.request("POST", service, path, json=body)

    async def put(self, service: str, path: str, body: Any = None) -> Any:
        return await self.request("PUT", service, path, json=body)

    async def delete(self, service: str, path: str) -> Any:
        return await self.request("DELETE", service, path)

    async def available(self, service: str, path: str) -> bool:
        """Whether the service answers at `path` (a newer API may not be served yet)."""
        if service not in self.paths:
            return False
        response = await self.http.send(
            "GET", self.paths[service] + path, self.token, params={"limit": 1}
        )
        return response.status_code < 400
