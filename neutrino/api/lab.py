"""`/lab/v1`: lab instances, for people and tests that need something sending packets.

Instances are a resource like any other (same list, filter and tag
semantics as the networking API). A command runs inside one by the agent of
its host (neutrino.agent.endpoint), in two forms: `POST
/lab/v1/instances/{id}/exec` answers {"exit_status", "stdout", "stderr"}
once it has ended; a WebSocket on the same path
(`?command=ARG&command=ARG...&tty=1&timeout=SECONDS&rows=R&cols=C&idle_timeout=SECONDS`)
streams it both ways as it runs, with signals and a terminal (frames: see
neutrino.agent.commands). A terminal on which nothing passes either way for
its idle timeout (TERMINAL_IDLE_TIMEOUT unless the client says) is ended with
all it started, as an abandoned console should be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anyio import from_thread
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from neutrino import errors
from neutrino.api import Authenticate
from neutrino.api.agent_link import AgentLink, deny, relay
from neutrino.api.v2 import Collection
from neutrino.api.v2.attrs import Attr, dict_of, ip_address, list_of, standard, string, uuid_str
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services import instances

TERMINAL_IDLE_TIMEOUT = 1800.0

NETWORK_REF = dict_of({"network_id": (uuid_str(), True), "fixed_ip": (ip_address(), False)})
GROUP_REF = dict_of({"name": (string(), True)})  # a name or an ID, as Nova's

INSTANCE = {
    **standard(),
    "host": Attr(string(), sort=True),
    "availability_zone": Attr(string(), sort=True),
    "host_status": Attr(post=False, filter=False),
    "networks": Attr(list_of(NETWORK_REF, max_items=8), filter=False),
    "ports": Attr(list_of(uuid_str(), max_items=8, unique=True), filter=False),
    "security_groups": Attr(list_of(GROUP_REF, max_items=32), filter=False),
    "status": Attr(post=False, sort=True),
    "port_ids": Attr(post=False, filter=False),
    "netns": Attr(post=False),
    "addresses": Attr(post=False, filter=False),
}

EXEC = dict_of(
    {
        "command": (list_of(string(4096), max_items=256), True),
        "timeout": (lambda v: float(v), False),
    }
)


def command_of(body: Any) -> dict[str, Any]:
    """{"command": [...], "timeout": seconds or None} from an exec request."""
    request = EXEC(body)
    if not request["command"]:
        raise errors.BadRequest(resource="exec", msg="'command' must not be empty")
    timeout = request.get("timeout")
    if timeout is not None and not 0 < timeout < 1e9:
        raise errors.BadRequest(resource="exec", msg="'timeout' is a positive number of seconds")
    return {"command": request["command"], "timeout": timeout}


def running_instance(db: Database, ctx: Context, ref: str) -> tuple[str, str]:
    """(host, namespace) of an instance the caller may see."""
    with db.read() as conn:
        row = instances.fetch(conn, ctx, ref)
    if not row.netns:
        raise errors.Conflict(
            f"Instance {row.name or row.id} is not running yet (status {row.status})."
        )
    return row.host, row.netns


def run_command(link: AgentLink) -> Callable[[Database, Context, str, Any], dict[str, Any]]:
    def run(db: Database, ctx: Context, ref: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.BadRequest(
                resource="exec", msg='expected {"command": [...], "timeout": seconds}'
            )
        command = command_of(body)
        host, netns = running_instance(db, ctx, ref)
        # Without a timeout of the caller's, the answer waits as long as a request may.
        wanted = {**command, "netns": netns, "timeout": command["timeout"] or 30.0}
        result: dict[str, Any] = from_thread.run(link.run, host, wanted)
        return result

    return run


def exec_query(websocket: WebSocket) -> dict[str, Any]:
    """What a WebSocket exec asks for, from its query string."""
    query = websocket.query_params
    tty = query.get("tty") in ("1", "true")
    try:
        command = command_of(
            {
                "command": query.getlist("command"),
                **({"timeout": query["timeout"]} if query.get("timeout") else {}),
            }
        )
        size = (int(query.get("rows", 24)), int(query.get("cols", 80)))
        idle = query.get("idle_timeout")
        idle_timeout = float(idle) if idle else TERMINAL_IDLE_TIMEOUT if tty else None
    except ValueError:
        raise errors.HTTPBadRequest("rows, cols and the timeouts are numbers") from None
    if not all(0 < n < 65536 for n in size):
        raise errors.HTTPBadRequest("rows and cols are between 1 and 65535")
    if idle_timeout is not None and not 0 < idle_timeout < 1e9:
        raise errors.HTTPBadRequest("'idle_timeout' is a positive number of seconds")
    return {**command, "tty": tty, "size": size, "idle_timeout": idle_timeout}


def stream(
    authenticate: Authenticate,
    link: AgentLink,
    target: Callable[[Context, WebSocket], tuple[str, str]],
) -> Callable[[WebSocket], Any]:
    """A WebSocket exec in the namespace `target` names as (host, namespace)."""

    async def handle(websocket: WebSocket) -> None:
        try:
            ctx = await authenticate(websocket)  # type: ignore[arg-type]
            command = exec_query(websocket)
            host, netns = await run_in_threadpool(target, ctx, websocket)
            agent = await link.connect_exec(host, {**command, "netns": netns})
        except (errors.NeutronError, errors.KeystoneError) as error:
            await deny(websocket, error)
            return
        await relay(websocket, agent)

    return handle


def routes(db: Database, authenticate: Authenticate, link: AgentLink) -> list[BaseRoute]:
    def instance(ctx: Context, websocket: WebSocket) -> tuple[str, str]:
        return running_instance(db, ctx, websocket.path_params["id"])

    return [
        WebSocketRoute("/v1/instances/{id}/exec", stream(authenticate, link, instance)),
    ]


def collection(default_host: str, link: AgentLink) -> Collection:
    return Collection(
        "instances",
        "instance",
        INSTANCE,
        instances.Instances(default_host),
        actions={"exec": run_command(link)},
    )
