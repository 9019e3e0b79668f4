"""Lists as Horizon's tables show them, all through one mechanism: a filter box, columns to sort
by, pages with Previous and Next, and "Delete selected".

A list page asks `listed(...)` for one page of the API's own list: the filter text becomes the
API's filter (an ID, an address, else the exact name), the sorted column its `sort_key` and
`sort_dir`, the page its `limit`, `marker` and `page_reverse`. It asks for one item more than a
page shows, so a page knows whether another follows (Neutron and Octavia link a full page onwards
even when nothing follows it). The macro `list_table` in macros.html shows the result; static/app.js
also narrows the shown rows as one types in the filter box.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from starlette.routing import BaseRoute

from neutrino.web.clients import ApiError
from neutrino.web.messages import deletion_report, for_people
from neutrino.web.ui import Dashboard, Done, Form, Ui, safe_next

PAGE_SIZE = 20
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# What "Delete selected" deletes, by kind: (API, path of one, query, what it is called).
DELETABLE: dict[str, tuple[str, str, dict[str, str], str]] = {
    "networks": ("network", "/v2.0/networks/", {}, "network"),
    "subnets": ("network", "/v2.0/subnets/", {}, "subnet"),
    "ports": ("network", "/v2.0/ports/", {}, "port"),
    "routers": ("network", "/v2.0/routers/", {}, "router"),
    "floatingips": ("network", "/v2.0/floatingips/", {}, "floating IP"),
    "security-groups": ("network", "/v2.0/security-groups/", {}, "security group"),
    "instances": ("lab", "/v1/instances/", {}, "instance"),
    "loadbalancers": (
        "load-balancer",
        "/v2/lbaas/loadbalancers/",
        {"cascade": "true"},
        "load balancer",
    ),
    "projects": ("identity", "/v3/projects/", {}, "project"),
    "users": ("identity", "/v3/users/", {}, "user"),
}


@dataclass(frozen=True)
class Column:
    label: str
    sort_key: str = ""  # the API attribute this column sorts by; none: it cannot sort


@dataclass(frozen=True)
class View:
    """What a table's URL asks for: filter text, sort, and the page (the marker is the ID of the
    item the page starts after, or before when going backwards)."""

    text: str = ""
    sort: str = ""
    descending: bool = False
    marker: str = ""
    backwards: bool = False

    @classmethod
    def of(cls, params: Mapping[str, str], prefix: str = "") -> View:
        return cls(
            text=params.get(prefix + "q", "").strip(),
            sort=params.get(prefix + "sort", ""),
            descending=params.get(prefix + "dir") == "desc",
            marker=params.get(prefix + "marker", ""),
            backwards=params.get(prefix + "reverse") == "1",
        )

    def params(self, prefix: str = "") -> list[tuple[str, str]]:
        pairs = [
            ("q", self.text),
            ("sort", self.sort),
            ("dir", "desc" if self.descending and self.sort else ""),
            ("marker", self.marker),
            ("reverse", "1" if self.backwards and self.marker else ""),
        ]
        return [(prefix + key, value) for key, value in pairs if value]


def api_query(
    view: View,
    columns: list[Column],
    text_filter: str = "name",
    address_filter: Mapping[str, str] | None = None,
    size: int | None = PAGE_SIZE,
) -> dict[str, Any]:
    """The API's query for `view`: the filter text as an ID, an address (`address_filter`:
    parameter -> template, e.g. {"fixed_ips": "ip_address={}"}) or a `text_filter` value; the
    sort if a column offers it; one item more than a page of `size` (None: a list the API
    gives whole)."""
    query: dict[str, Any] = {} if size is None else {"limit": size + 1}
    if text := view.text:
        if UUID.fullmatch(text.lower()):
            query["id"] = text.lower()
        elif address_filter and is_address(text):
            query.update({key: form.format(text) for key, form in address_filter.items()})
        elif text_filter:
            query[text_filter] = text
    if view.sort and view.sort in {c.sort_key for c in columns if c.sort_key}:
        query["sort_key"], query["sort_dir"] = view.sort, "desc" if view.descending else "asc"
    if view.marker:
        query["marker"] = view.marker
        if view.backwards:
            query["page_reverse"] = "True"
    return query


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def paged(
    found: list[dict[str, Any]], view: View, size: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], bool, bool]:
    """(the rows to show, whether a page comes before them, whether one comes after) from the
    up to `size` + 1 items the API gave for `view`. Going backwards, the API gives the items
    before the marker in the list's own order: the first is the extra one."""
    more = len(found) > size
    if view.backwards:
        return (found[1:] if more else found), more, True
    return found[:size], bool(view.marker), more


@dataclass
class Table:
    """One list as the `list_table` macro shows it."""

    id: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    view: View
    path: str
    others: list[tuple[str, str]]  # the URL's other parameters (other tables' views), kept
    prefix: str = ""
    has_previous: bool = False
    has_next: bool = False
    deletable: str = ""  # a kind of DELETABLE: the rows get checkboxes
    empty: str = "None."
    label: str = "name"  # what the filter box says it matches
    key: str = "id"
    # The markers of the page's first and last rows, kept when a page adds rows of its own.
    ends: tuple[str, str] = field(init=False)

    def __post_init__(self) -> None:
        marker = self.view.marker
        self.ends = (
            (self.rows[0][self.key], self.rows[-1][self.key]) if self.rows else (marker, marker)
        )

    def href(self, view: View) -> str:
        query = urlencode([*self.others, *view.params(self.prefix)])
        return f"{self.path}?{query}" if query else self.path

    def sort_href(self, column: Column) -> str:
        descending = self.view.sort == column.sort_key and not self.view.descending
        return self.href(View(self.view.text, column.sort_key, descending))

    def sorted(self, column: Column) -> str:
        """aria-sort of the column's header."""
        if not column.sort_key or self.view.sort != column.sort_key:
            return "none"
        return "descending" if self.view.descending else "ascending"

    @property
    def previous_href(self) -> str:
        return self.href(replace(self.view, marker=self.ends[0], backwards=True))

    @property
    def next_href(self) -> str:
        return self.href(replace(self.view, marker=self.ends[1], backwards=False))

    @property
    def here(self) -> str:
        return self.href(self.view)


@dataclass
class Listing:
    """How to ask the API for one table's rows."""

    service: str
    path: str
    collection: str
    filters: dict[str, Any] = field(default_factory=dict)  # always applied (e.g. project_id)
    text_filter: str = "name"
    address_filter: Mapping[str, str] | None = None
    paged: bool = True  # Keystone's lists come whole: neither paged nor sorted


async def listed(
    ui: Ui, table_id: str, listing: Listing, columns: list[Column], prefix: str = "", **shown: Any
) -> Table:
    """One page of `listing` as the URL's view of table `table_id` asks (its parameters start
    with `prefix` where a page shows several tables)."""
    params = ui.request.query_params
    view = View.of(params, prefix)
    own = {prefix + name for name in ("q", "sort", "dir", "marker", "reverse")}
    size = PAGE_SIZE if listing.paged else None
    query = api_query(view, columns, listing.text_filter, listing.address_filter, size)
    found = (await ui.api.get(listing.service, listing.path, **listing.filters, **query))[
        listing.collection
    ]
    rows, has_previous, has_next = paged(found, view) if size else (found, False, False)
    return Table(
        table_id,
        columns,
        rows,
        view,
        ui.request.url.path,
        [(k, v) for k, v in params.multi_items() if k not in own],
        prefix,
        has_previous,
        has_next,
        **shown,
    )


def routes(d: Dashboard) -> list[BaseRoute]:
    async def delete_selected(ui: Ui, form: Form) -> Done:
        kind = form.require("kind", "What to delete")
        if kind not in DELETABLE:
            raise ApiError(400, f"Cannot delete {kind} here.")
        service, path, query, called = DELETABLE[kind]
        ids = form.getlist("id")
        if not ids:
            raise ApiError(400, "Select what to delete first.")
        deleted, failed = [], []
        for item_id in ids:  # one by one, in the order shown: a later one may need an earlier gone
            name = item_id
            try:
                item = next(iter((await ui.api.get(service, path + item_id)).values()))
                name = str(
                    item.get("name")
                    or item.get("cidr")
                    or item.get("floating_ip_address")
                    or item_id
                )
                await ui.api.request("DELETE", service, path + item_id, params=query)
            except ApiError as error:
                failed.append((name, await for_people(ui.api, error)))
            else:
                deleted.append(name)
        return Done(safe_next(form.get("next")), deletion_report(called, deleted, failed))

    async def nothing(ui: Ui) -> Any:
        raise ApiError(405, "Choose what to delete on a list's page.")

    return [d.action("/delete-selected", nothing, delete_selected, "delete-selected")]
