"""The dashboard's tables: what a table's URL asks the API for, and which page links it shows."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from neutrino.web.tables import Column, Table, View, api_query, paged

COLUMNS = [Column("Name", "name"), Column("Subnets"), Column("Status", "status")]
ID = "6f1c7f4e-9d1b-4d52-8a0e-2f6b8f0b6a11"


def items(*names: str) -> list[dict[str, str]]:
    return [{"id": name, "name": name} for name in names]


def test_the_filter_text_is_an_id_an_address_or_a_name() -> None:
    ports = {"fixed_ips": "ip_address={}"}
    assert api_query(View(text=ID.upper()), COLUMNS) == {"limit": 21, "id": ID}
    assert api_query(View(text="10.0.0.5"), COLUMNS, address_filter=ports) == {
        "limit": 21,
        "fixed_ips": "ip_address=10.0.0.5",
    }
    assert api_query(View(text="10.0.0.5"), COLUMNS) == {"limit": 21, "name": "10.0.0.5"}
    assert api_query(View(text="web"), COLUMNS, text_filter="host", size=None) == {"host": "web"}


def test_only_a_column_that_offers_it_sorts_and_the_page_goes_by_its_marker() -> None:
    assert api_query(View(sort="status", descending=True, marker=ID), COLUMNS) == {
        "limit": 21,
        "sort_key": "status",
        "sort_dir": "desc",
        "marker": ID,
    }
    assert api_query(View(sort="subnets"), COLUMNS) == {"limit": 21}
    assert api_query(View(marker=ID, backwards=True), COLUMNS, size=5) == {
        "limit": 6,
        "marker": ID,
        "page_reverse": "True",
    }


def test_one_item_more_than_a_page_says_another_follows() -> None:
    names = [f"n{i:02d}" for i in range(25)]
    assert paged(items(*names[:3]), View(), 3) == (items(*names[:3]), False, False)
    assert paged(items(*names[:4]), View(), 3) == (items(*names[:3]), False, True)
    # After a marker: a page before; the last page has none after.
    assert paged(items(*names[3:7]), View(marker="n02"), 3) == (items(*names[3:6]), True, True)
    assert paged(items(*names[24:]), View(marker="n23"), 3) == (items("n24"), True, False)
    # Backwards from n10: the API gives n06..n09 in the list's order; n06 is the extra one.
    assert paged(items(*names[6:10]), View(marker="n10", backwards=True), 3) == (
        items("n07", "n08", "n09"),
        True,
        True,
    )
    # Back at the start: nothing before it.
    assert paged(items("n00", "n01"), View(marker="n02", backwards=True), 3) == (
        items("n00", "n01"),
        False,
        True,
    )


def query_of(href: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(href).query))


def test_page_links_keep_the_filter_the_sort_and_the_other_tables_views() -> None:
    view = View(text="web", sort="name", descending=True, marker="n02")
    table = Table(
        "ports", COLUMNS, items("n03", "n04"), view, "/d/net", [("subnets-q", "a")], "ports-"
    )
    assert View.of(query_of(table.here), "ports-") == view
    assert query_of(table.next_href) == {
        "subnets-q": "a",
        "ports-q": "web",
        "ports-sort": "name",
        "ports-dir": "desc",
        "ports-marker": "n04",
    }
    assert View.of(query_of(table.previous_href), "ports-") == View(
        "web", "name", True, "n03", backwards=True
    )
    # Rows a page adds after the API's (other projects' shared networks) are no marker.
    table.rows += items("shared")
    assert query_of(table.next_href)["ports-marker"] == "n04"
    # A column's header sorts by it, the other way once it is the sort; from the first page.
    assert query_of(table.sort_href(COLUMNS[0])) == {
        "subnets-q": "a",
        "ports-q": "web",
        "ports-sort": "name",
    }
    assert query_of(table.sort_href(COLUMNS[2]))["ports-sort"] == "status"
    assert [table.sorted(c) for c in COLUMNS] == ["descending", "none", "none"]
