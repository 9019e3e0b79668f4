"""Request shapes of trunks, and their subport actions."""

from __future__ import annotations

from typing import Any

from neutrino.api.v2 import Action
from neutrino.api.v2.attrs import REQUIRED, Attr, boolean, standard, uuid_str
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services.trunks import Trunks, subports_format

TRUNK = {
    **standard(),
    "admin_state_up": Attr(boolean, default=True, put=True, sort=True),
    "port_id": Attr(uuid_str(), default=REQUIRED, sort=True),
    "status": Attr(post=False, sort=True),
    "sub_ports": Attr(subports_format, default=list, filter=False),
}


def trunk_actions(service: Trunks) -> dict[str, Action]:
    """`PUT add_subports` and `PUT remove_subports` with `{"sub_ports": [...]}` answer the
    trunk (unwrapped, as Neutron does); `GET get_subports` its subports."""

    def add(db: Database, ctx: Context, trunk_id: str, body: Any) -> dict[str, Any]:
        return service.add_subports(db, ctx, trunk_id, body)

    def remove(db: Database, ctx: Context, trunk_id: str, body: Any) -> dict[str, Any]:
        return service.remove_subports(db, ctx, trunk_id, body)

    def get(db: Database, ctx: Context, trunk_id: str, _body: Any) -> dict[str, Any]:
        return {"sub_ports": service.get(db, ctx, trunk_id)["sub_ports"]}

    return {"add_subports": add, "remove_subports": remove, "get_subports": get}
