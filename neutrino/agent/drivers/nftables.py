"""nftables through in-process libnftables, inside the host namespace."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import nftables

from neutrino.agent.drivers import nfnetlink
from neutrino.agent.drivers.netns import NetnsThread
from neutrino.plan.state import Firewall

T = TypeVar("T")

# br_netfilter passes a bridge's IP packets through the inet hooks (conntrack)
# when these say so for every bridge of the namespace, or the bridge's own
# switch does (Link.netfilter). A new namespace starts with them on.
BRIDGE_NF_SYSCTLS = ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables")


class NftError(RuntimeError):
    pass


class NftDriver:
    """`terse`: listings leave out sets' elements (those the kernel's rules add themselves, so
    that they do not read as drift); `stateless`: and counters' values (`counters` reads them).

    A libnftables context keeps what its last command read and made (its cache) until its next
    command frees it: after a listing or a whole table's transaction, every rule and element of
    our tables (milliseconds to free at 1,000 ports). So those each have a context of their
    own, freed as they end, and the one kept serves the changes (`update`), whose next one
    would otherwise pay for them."""

    def __init__(self, worker: NetnsThread, terse: bool = False, stateless: bool = False) -> None:
        self._worker = worker
        self._terse, self._stateless = terse, stateless
        self._nft = worker.call(lambda: self._open(terse, stateless))
        self._parsed: dict[str, Objects] = {}  # the parts of the last update, by digest

    @staticmethod
    def _open(terse: bool, stateless: bool) -> nftables.Nftables:
        nft = nftables.Nftables()
        nft.set_handle_output(False)
        nft.set_terse_output(terse)
        nft.set_stateless_output(stateless)
        return nft

    def listing(self, tables: tuple[tuple[str, str], ...]) -> str | None:
        """The kernel's text of our tables; None when one is missing."""

        def read(nft: nftables.Nftables) -> str | None:
            texts = []
            for family, name in tables:
                rc, out, _ = nft.cmd(f"list table {family} {name}")
                if rc != 0:
                    return None
                texts.append(str(out))
            return "".join(texts)

        return self._alone(read)

    def _alone(self, work: Callable[[nftables.Nftables], T]) -> T:
        """`work` in the worker, with a libnftables context of its own (freed as it ends)."""
        return self._worker.call(lambda: work(self._open(self._terse, self._stateless)))

    def counters(self, family: str, table: str) -> tuple[int, dict[str, tuple[int, int]]] | None:
        """The table's handle (a table made again gets a new one) and its named counters'
        (packets, bytes); None when it is missing."""

        def read() -> tuple[int, str, str]:
            self._nft.set_json_output(True)
            self._nft.set_stateless_output(False)
            try:
                rc, out, err = self._nft.cmd(f"list table {family} {table}")
                return int(rc), str(out), str(err)
            finally:
                self._nft.set_json_output(False)
                self._nft.set_stateless_output(self._stateless)

        rc, out, _ = self._worker.call(read)
        if rc != 0:
            return None
        handle, counters = 0, {}
        for item in json.loads(out)["nftables"]:
            if "table" in item:
                handle = item["table"]["handle"]
            elif "counter" in item:
                counter = item["counter"]
                counters[counter["name"]] = (counter["packets"], counter["bytes"])
        return handle, counters

    def generation(self) -> int:
        """The namespace's nftables ruleset generation: every commit bumps it."""
        # on the worker's own socket, kept while it lives
        return self._worker.call(nfnetlink.generation)

    def replace(self, firewall: Firewall) -> None:
        """Swap our tables for `firewall` in one transaction.

        `add` before `delete` makes the delete valid when a table is missing.
        Conntrack entries live outside the tables, so established flows survive.
        """
        commands: list[dict[str, Any]] = []
        for family, name in firewall.tables:
            commands.append({"add": {"table": {"family": family, "name": name}}})
            commands.append({"delete": {"table": {"family": family, "name": name}}})
        # Elements that parts add to another's sets and maps go in one command per set, last:
        # libnftables reads tens of thousands of commands slower than their elements.
        added: dict[tuple[str, str, str], list[Any]] = {}
        for command in firewall.commands:
            element = command.get("add", {}).get("element")
            if element is None:
                commands.append(command)
            else:
                where = (element["family"], element["table"], element["name"])
                added.setdefault(where, []).extend(element["elem"])
        commands += [_element("add", *where, elements) for where, elements in added.items()]
        commands += [
            _element("add", family, table, name, list(elements))
            for family, table, name, elements in firewall.elements
            if elements
        ]
        self._apply(commands, alone=True)

    def update_elements(self, firewall: Firewall, applied: dict[str, list[str]]) -> list[str]:
        """Make the sets of `firewall.elements` hold exactly their elements, from `applied`
        (what they held, as set_elements gives it); one transaction. The sets changed."""
        before = tuple(
            (family, table, name, tuple(applied.get(f"{family} {table} {name}", [])))
            for family, table, name, _ in firewall.elements
        )
        commands, changed = _element_changes(before, firewall.elements)
        if commands:
            self._apply(commands, alone=True)
        return [name for _, _, name in changed]

    def update(self, before: Firewall, after: Firewall) -> list[tuple[str, str]] | None:
        """Turn the tables of `before` (as applied) into those of `after` in one transaction.
        Only the parts that are not in both (by digest) are read, object by object: sets' and
        maps' elements added and deleted (a part may add elements to another's), chains whose
        rules changed flushed and refilled, new objects added, those gone deleted; then the
        in-place sets' elements. What was done to which object ("add", "update" or "delete",
        its `object_key`); None (nothing done) when a table or a chain's hook differs: then
        `replace`."""
        had_parts, parts = dict(before.parts), dict(after.parts)
        old: Objects = {}
        new: Objects = {}
        for found, mine, theirs in ((old, had_parts, parts), (new, parts, had_parts)):
            # at C speed, in a stable order: a host may have 10,000 ports' parts
            for digest in sorted(mine.keys() - theirs.keys()):
                part = mine[digest]
                objects = self._parsed.get(digest) or _objects(part)
                if objects is None:
                    return None
                self._parsed[digest] = objects
                for key, (spec, items) in objects.items():
                    earlier = found.get(key)
                    found[key] = (spec, items if earlier is None else earlier[1] + items)
        changed: list[tuple[str, str]] = []
        first: list[Any] = []
        then: list[Any] = []
        last: list[Any] = []
        for key, (spec, items) in new.items():
            kind, family, table, name = key
            had = old.get(key)
            if had is not None and had[0] != spec:
                return None  # a chain's hook or a set's type: not changed in place
            if kind == "element":  # another part's set or map
                present = had[1] if had is not None else []
                kind = _container(present + items)
                if _update_elements((kind, family, table, name), present, items, first, then):
                    changed.append(("update", object_key((kind, family, table, name))))
                continue
            if had is None:
                if kind == "table":
                    return None
                first.append({"add": {kind: spec}})
            if kind == "chain":
                if had is not None and had[1] == items:
                    continue
                if had is not None:
                    then.append(
                        {"flush": {"chain": {"family": family, "table": table, "name": name}}}
                    )
                then += [{"add": {"rule": rule}} for rule in items]
            elif kind in ("set", "map"):
                if had is not None and had[1] == items:
                    continue
                present = had[1] if had is not None else []
                if not _update_elements(key, present, items, first, then) and had is not None:
                    continue
            elif had is not None:
                continue
            changed.append(("add" if had is None else "update", object_key(key)))
        for key in old.keys() - new.keys():
            kind, family, table, name = key
            if kind == "element":  # all another part's set or map had of them go
                kind = _container(old[key][1])
                if _update_elements((kind, family, table, name), old[key][1], [], first, then):
                    changed.append(("update", object_key((kind, family, table, name))))
                continue
            ref = {"family": family, "table": table, "name": name}
            if kind in ("chain", "set", "map"):
                # First emptied: what jumps to a chain (a rule, a verdict map's element) may go
                # later in the transaction, and so may what a map's elements jump to.
                first.append({"flush": {kind: ref}})
            last.append({"delete": {kind: ref}})
            changed.append(("delete", object_key(key)))
        gone_sets = {
            (family, table, name)
            for kind, family, table, name in old.keys() - new.keys()
            if kind != "element"
        }
        elements, sets = _element_changes(
            tuple(e for e in before.elements if e[:3] not in gone_sets), after.elements
        )
        changed += [("update", object_key(("set", *key))) for key in sets]
        transaction = first + then + elements + last
        if transaction:
            self._apply(transaction)
        self._parsed = {digest: o for digest, o in self._parsed.items() if digest in parts}
        return changed

    def repair(self, firewall: Firewall, keys: set[str]) -> list[str]:
        """Make the objects `keys` (`object_key`) of the tables as `firewall` has them, in one
        transaction: each of its own added if missing and refilled, any other emptied and
        deleted. What was done."""
        objects = _objects(firewall.commands) or {}
        in_place = {object_key(("set", *e[:3])): e[3] for e in firewall.elements}
        first, then, last, done = [], [], [], []
        for key in sorted(keys):
            *words, family, table, name = key.split(" ")
            kind = " ".join(words)  # "ct helper", ...
            ref = {"family": family, "table": table, "name": name}
            wanted = objects.get((kind, family, table, name))
            if wanted is None:  # not ours; a chain emptied first, so the jumps to it may go
                if kind == "chain":
                    first.append({"flush": {kind: ref}})
                last.append({"delete": {kind: ref}})
                done.append(f"delete {kind} {name}")
                continue
            first.append({"add": {kind: wanted[0]}})
            then.append({"flush": {kind: ref}})
            items = [*wanted[1], *in_place.get(key, ())]
            if kind == "chain":
                then += [{"add": {"rule": rule}} for rule in items]
            elif items:
                then.append(_element("add", family, table, name, items))
            done.append(f"repair {kind} {name}")
        self._apply(first + then + last, alone=True)
        return done

    def delete(self, tables: tuple[tuple[str, str], ...]) -> None:
        commands: list[dict[str, Any]] = []
        for family, name in tables:
            commands.append({"add": {"table": {"family": family, "name": name}}})
            commands.append({"delete": {"table": {"family": family, "name": name}}})
        self._apply(commands, alone=True)

    def _apply(self, commands: list[dict[str, Any]], alone: bool = False) -> None:
        """One transaction; `alone`: in a context of its own (one that reads or makes whole
        tables)."""

        def commit(nft: nftables.Nftables) -> tuple[int, str, str]:
            return nft.json_cmd({"nftables": commands})  # type: ignore[no-any-return]

        rc, _, err = self._alone(commit) if alone else self._worker.call(lambda: commit(self._nft))
        if rc != 0:
            raise NftError(f"nft transaction failed: {str(err).strip()}")

    def bridges_choose_netfilter(self, own_namespace: bool) -> bool:
        """Let each bridge's own switch decide: in a namespace of ours, the
        namespace-wide sysctls go off; the root namespace's stay as its owner
        set them (on, they only add bridges that need no conntrack). Fails when
        br_netfilter is missing: security groups could not be stateful.
        True when a sysctl was changed."""

        def write() -> bool:
            changed = False
            for name in BRIDGE_NF_SYSCTLS:
                path = Path("/proc/sys/net/bridge") / name
                if path.read_text().strip() != "0" and own_namespace:
                    path.write_text("0\n")
                    changed = True
            return changed

        return self._worker.call(write)


def listing_digest(listing: str) -> str:
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def object_key(key: tuple[str, str, str, str]) -> str:
    """(kind, family, table, name) as one string: "chain bridge neutrino egress"."""
    return " ".join(key)


def listing_objects(listing: str) -> dict[str, str]:
    """A digest of each object's text in the kernel's listing of tables, by `object_key`; a
    table's own lines (its flags) are those of the object "table FAMILY NAME NAME"."""
    texts: dict[str, list[str]] = {}
    table = current = ""
    for line in listing.splitlines():
        words = line.split()
        if line.startswith("table "):  # table bridge neutrino {
            table = f"{words[1]} {words[2]}"
            current = f"table {table} {words[2]}"
            texts[current] = [line]
        elif line.startswith("\t") and not line.startswith("\t\t") and line.endswith("{"):
            current = f"{' '.join(words[:-2])} {table} {words[-2]}"  # chain NAME {
            texts[current] = []
        elif line == "\t}":
            current = f"table {table} {table.split()[1]}"
        elif line:  # not the blank line between two objects
            texts[current].append(line)
    return {key: listing_digest("\n".join(text)) for key, text in texts.items()}


def set_elements(firewall: Firewall) -> dict[str, list[Any]]:
    """The elements of the firewall's in-place sets, keyed "family table set" (JSON-able)."""
    return {
        f"{family} {table} {name}": list(elements)
        for family, table, name, elements in firewall.elements
    }


Objects = dict[tuple[str, str, str, str], tuple[dict[str, Any], list[Any]]]
Elements = tuple[tuple[str, str, str, tuple[Any, ...]], ...]


def _objects(commands: tuple[dict[str, Any], ...]) -> Objects | None:
    """The tables, chains, sets and maps that `commands` add, by (kind, family, table, name):
    each object's definition and its rules (chains) or elements (sets, maps); elements added
    to a set or map that they do not add are of the kind "element". None: they add an object
    of another kind."""
    found: Objects = {}
    for command in commands:
        [(kind, body)] = command["add"].items()
        if kind == "element":
            where = (body["family"], body["table"], body["name"])
            key = next(
                (k for k in (("set", *where), ("map", *where)) if k in found), ("element", *where)
            )
            found.setdefault(key, ({}, []))[1].extend(body["elem"])
        elif kind == "table":
            found[(kind, body["family"], body["name"], body["name"])] = (body, [])
        elif kind in ("chain", "set", "map"):
            spec = {k: v for k, v in body.items() if k != "elem"}
            found[(kind, body["family"], body["table"], body["name"])] = (
                spec,
                list(body.get("elem", [])),
            )
        elif kind == "rule":
            found[("chain", body["family"], body["table"], body["chain"])][1].append(body)
        else:
            return None
    return found


def _element_changes(
    before: Elements, after: Elements
) -> tuple[list[Any], list[tuple[str, str, str]]]:
    """The commands that turn the in-place sets' elements `before` into `after` (those of a
    set that is new are all added), and the sets they change."""
    had = {(family, table, name): elements for family, table, name, elements in before}
    commands, changed = [], []
    for family, table, name, elements in after:
        present = had.get((family, table, name), ())
        if present == elements:
            continue
        gone = sorted(set(map(_canonical, present)) - set(map(_canonical, elements)))
        new = sorted(set(map(_canonical, elements)) - set(map(_canonical, present)))
        if gone:
            commands.append(_element("delete", family, table, name, list(map(json.loads, gone))))
        if new:
            commands.append(_element("add", family, table, name, list(map(json.loads, new))))
        if gone or new:
            changed.append((family, table, name))
    # Deletions first: a new interval may overlap one that goes.
    commands.sort(key=lambda command: "add" in command)
    return commands, changed


def _update_elements(
    key: tuple[str, str, str, str],
    present: list[Any],
    wanted: list[Any],
    first: list[Any],
    then: list[Any],
) -> bool:
    """Add the commands that turn a set's or map's elements `present` into `wanted`:
    deletions to `first`, additions to `then`. Whether there are any."""
    kind, family, table, name = key
    had = {_key(e): e for e in present}
    now = {_key(e): e for e in wanted}
    gone = [e for k, e in had.items() if now.get(k) != e]
    added = [e for k, e in now.items() if had.get(k) != e]
    if gone:  # a map's by their keys
        keys = [e[0] if kind == "map" else e for e in gone]
        first.insert(0, _element("delete", family, table, name, keys))
    if added:
        then.append(_element("add", family, table, name, added))
    return bool(gone or added)


def _container(elements: list[Any]) -> str:
    """Whether elements are a map's ([key, value]) or a set's."""
    return "map" if any(isinstance(e, list) for e in elements) else "set"


def _canonical(element: Any) -> str:
    return json.dumps(element, sort_keys=True)


def _key(element: Any) -> str:
    """A set's element, or a map's by its key (its value may change); the plan makes equal
    elements alike, keys in the same order."""
    return repr(element[0] if isinstance(element, list) else element)


def _element(verb: str, family: str, table: str, name: str, elements: list[Any]) -> Any:
    return {verb: {"element": {"family": family, "table": table, "name": name, "elem": elements}}}
