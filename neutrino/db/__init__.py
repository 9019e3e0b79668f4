"""Database access: one engine, short transactions, writes serialized where needed.

SQLite (the embedded default) allows one writer at a time; instead of letting
threads spin on SQLITE_BUSY we queue writers, in arrival order, on a process
lock and open every write transaction with BEGIN IMMEDIATE, so a
read-then-write never upgrades into a deadlock. PostgreSQL runs writers
concurrently; correctness there rests on the same rule: every write
transaction first locks the change feed's head row, so writers run one at a
time there too. That makes IPAM, quotas and segment allocation correct by
construction, and keeps the change log in commit order; unique constraints
remain as the last line of defence. A process queues its own writers on the
same lock as on SQLite: PostgreSQL wakes all who wait for the head at once,
to take it in no order, which shows as a long tail of latency. The writer
holding the head knows the revision: the changes it records are numbered in
memory and written at its end, with the head moved past them, in one
statement on PostgreSQL. There, each round trip of a write is one that every
other writer waits for: a write begins and locks the head in one, and its
changes and the head take one.
A read on PostgreSQL runs outside a transaction: at READ COMMITTED each
statement reads its own snapshot either way, and it saves a BEGIN and a COMMIT
(but a streamed read, whose server-side cursor lives in a transaction). A
pooled connection is pinged before use only if the server said something to
it while it was idle, which the server does only to end it (a restart, a
terminated backend, an idle timeout): the others save that round trip too.

Several processes (server workers, servers on other hosts) share one
PostgreSQL. A commit that changes the change feed or identity is announced
on a channel (triggers of migration 0033); each process keeps one
connection LISTENing to them and calls back what `listen` registered: a
write through one process wakes the long-polls of all, and makes all forget
the tokens they checked. SQLite serves one process: nothing to hear there.

Statements on hot paths (the change feed entry of every write, a port
create's lookups and inserts) are built once and executed with parameters:
on SQLite, building a statement costs more than running it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from select import POLLIN, poll

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from neutrino.db import schema

log = logging.getLogger(__name__)
CHANNELS = ("neutrino_feed", "neutrino_identity")
POOL_SIZE = 8  # PostgreSQL connections a process keeps, and as many more while busy
LISTEN_RETRY = 0.5  # seconds before connecting again after losing the listening connection


class FifoLock:
    """A lock taken in arrival order. A plain Lock lets a thread that just came overtake ones
    that have waited long; with writers queued on it, that shows as a long latency tail."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._queue: deque[threading.Lock] = deque()
        self._held = False

    def __enter__(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._queue.append(turn)
        turn.acquire()  # released by the holder before us, who hands the lock over

    def __exit__(self, *_exc: object) -> None:
        with self._guard:
            if self._queue:
                self._queue.popleft().release()
            else:
                self._held = False


LOCK_FEED_HEAD = select(schema.feed_head.c.revision).with_for_update()
BEGIN_LOCKING_FEED_HEAD = f"BEGIN; {LOCK_FEED_HEAD.compile(dialect=postgresql.dialect())}"
MOVE_FEED_HEAD = update(schema.feed_head).values(revision=bindparam("head"))
ADD_CHANGES = insert(schema.changes)
CHANGE_COLUMNS = [column.name for column in schema.changes.c]
# PostgreSQL: the changes as one array per column, and the head moved in a CTE of the
# insert: one statement, the same for any number of changes, prepared once by the driver.
ADD_CHANGES_MOVING_HEAD = text(
    "WITH moved AS (UPDATE feed_head SET revision = :head) "
    f"INSERT INTO changes ({', '.join(CHANGE_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(
        f"CAST(:{column.name} AS {column.type.compile(dialect=postgresql.dialect())}[])"
        for column in schema.changes.c
    )
    + ")"
)


class Changes:
    """The change feed entries of one write transaction, numbered from the head it locked and
    written when it is about to commit (`Database.write`)."""

    def __init__(self, head: int) -> None:
        self.head = head
        self.rows: list[dict[str, object]] = []

    def add(self, change: dict[str, object]) -> int:
        """Log a change (a row of `changes` but its revision); its revision."""
        revision = self.head + len(self.rows) + 1
        self.rows.append({**change, "revision": revision})
        return revision

    def write(self, conn: Connection) -> None:
        if not self.rows:
            return
        head = self.head + len(self.rows)
        if conn.dialect.name == "sqlite":
            conn.execute(ADD_CHANGES, self.rows)
            conn.execute(MOVE_FEED_HEAD, {"head": head})
        else:
            columns = {name: [row[name] for row in self.rows] for name in CHANGE_COLUMNS}
            conn.execute(ADD_CHANGES_MOVING_HEAD, {"head": head, **columns})


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = FifoLock()
        self._writing = threading.local()
        self.on_commit: list[Callable[[], None]] = []  # e.g. wake the change feed's long-polls
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._listening: threading.Thread | None = None
        self._stopped = threading.Event()
        if self.is_sqlite:
            memory = url in ("sqlite://", "sqlite:///:memory:")
            if memory:
                self.engine = create_engine(
                    url, connect_args={"check_same_thread": False}, poolclass=StaticPool
                )
            else:
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                self.engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=16
                )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", self._sqlite_begin)
        else:
            # Writers take turns on the head, and two cores serve a few reads at once: more
            # connections would only wait, each costing PostgreSQL a backend process.
            self.engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_SIZE)
            event.listen(self.engine, "begin", self._postgresql_begin)
            event.listen(self.engine, "checkout", self._ping_if_told_anything)
            event.listen(self.engine, "checkin", _driver_begins)

    def _sqlite_begin(self, conn: Connection) -> None:
        immediate = getattr(self._writing, "active", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def _postgresql_begin(self, conn: Connection) -> None:
        """A write begins and locks the feed head in one round trip instead of two: the
        driver, which would send its own BEGIN first, is told it has none to send."""
        if not getattr(self._writing, "active", False):
            return
        driver = conn.connection.dbapi_connection
        assert driver is not None
        driver.autocommit = True  # until the connection is checked in (`_driver_begins`)
        cursor = driver.cursor()
        cursor.execute(BEGIN_LOCKING_FEED_HEAD)
        cursor.nextset()
        row = cursor.fetchone()
        assert row is not None
        conn.info["head"] = row[0]

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any error. A write
        begun inside another one on the same thread is part of it (a bulk create is all or
        nothing)."""
        outer = getattr(self._writing, "conn", None)
        if outer is not None:
            yield outer
            return
        with self._write_lock:
            self._writing.active = True
            try:
                with self.engine.begin() as conn, self._joinable(conn):
                    yield conn
            finally:
                self._writing.active = False
        for callback in self.on_commit:
            callback()

    @contextmanager
    def _joinable(self, conn: Connection) -> Iterator[None]:
        """The write on `conn`: joined by nested ones; its changes written if it succeeds."""
        head = conn.info.pop("head", None)  # PostgreSQL's, locked as the write began
        if head is None:
            head = conn.execute(LOCK_FEED_HEAD).scalar_one()
        changes = conn.info["changes"] = Changes(head)
        self._writing.conn = conn
        try:
            yield
            changes.write(conn)
        finally:
            self._writing.conn = None
            del conn.info["changes"]

    def _ping_if_told_anything(self, dbapi_conn, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
        """A pooled connection with something to read was told something while idle, most
        likely that it is closed: pinged, and replaced by the pool (DisconnectionError) if the
        ping fails."""
        if dbapi_conn.closed:
            raise DisconnectionError("a pooled connection was closed")
        told = poll()
        told.register(dbapi_conn.fileno(), POLLIN)
        if not told.poll(0):
            return
        dialect = self.engine.dialect
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(f"a pooled connection was lost: {error}") from error

    @contextmanager
    def read(self, streamed: bool = False) -> Iterator[Connection]:
        """A read; one begun inside a write on the same thread reads through the write's
        connection (it sees what the write did, and does not wait for the write's lock, which
        SQLite would hold against it). `streamed`: it reads through a server-side cursor
        (`yield_per`), which PostgreSQL keeps only inside a transaction."""
        outer = getattr(self._writing, "conn", None)
        if outer is not None:
            yield outer
            return
        with self.engine.connect() as conn:
            if not (self.is_sqlite or streamed):
                # No BEGIN, no COMMIT: each statement reads its own snapshot, as it would in
                # a READ COMMITTED transaction. Until checked in (`_driver_begins`).
                driver = conn.connection.dbapi_connection
                assert driver is not None
                driver.autocommit = True
            yield conn
            if self.is_sqlite:
                conn.rollback()
            else:  # on a ROLLBACK psycopg drops every statement it prepared on the connection
                conn.commit()

    def listen(self, channel: str, callback: Callable[[], None]) -> None:
        """Call `callback` (in a thread of its own) after each commit, by any process, of a
        write announced on `channel`, and whenever some may have gone unheard (the listening
        connection was lost). On SQLite, which one process serves, never."""
        assert channel in CHANNELS, channel
        if self.is_sqlite:
            return
        self._listeners.setdefault(channel, []).append(callback)
        if self._listening is None:
            self._listening = threading.Thread(target=self._listen, name="listen", daemon=True)
            self._listening.start()

    def _listen(self) -> None:
        dbapi = self.engine.dialect.loaded_dbapi
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        while not self._stopped.is_set():
            try:
                with dbapi.connect(*cargs, **cparams, autocommit=True) as conn:
                    for channel in CHANNELS:
                        conn.execute(f"LISTEN {channel}")
                    self._heard(*self._listeners)  # what was committed while nobody listened
                    while not self._stopped.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._heard(note.channel)
            except dbapi.Error as error:
                if not self._stopped.is_set():
                    log.warning("not hearing the database's notifications (%s); retrying", error)
                    self._stopped.wait(LISTEN_RETRY)

    def _heard(self, *channels: str) -> None:
        for channel in channels:
            for callback in self._listeners.get(channel, ()):
                callback()

    def migrate(self) -> None:
        from neutrino.db.migrations import upgrade

        upgrade(self.engine)

    def dispose(self) -> None:
        self._stopped.set()  # the listening thread ends within half a second
        self.engine.dispose()

    @staticmethod
    def head_revision(conn: Connection) -> int:
        return conn.execute(select(schema.feed_head.c.revision)).scalar_one_or_none() or 0


def insert_unless_taken(conn: Connection, table: Table, *unique: str) -> Insert:
    """An INSERT that, when the `unique` columns' values are already taken, inserts nothing
    instead of failing: checking and claiming in one statement. It returns the row it
    inserted, and no row when it did not (the drivers' rowcount does not always say).
    Execute it with the row's values as parameters."""
    return _insert_unless_taken(conn.dialect.name, table, unique)


@cache
def _insert_unless_taken(dialect: str, table: Table, unique: tuple[str, ...]) -> Insert:
    # Built once per statement (see the module's docstring).
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    return insert(table).on_conflict_do_nothing(index_elements=list(unique)).returning(*table.c)


def _driver_begins(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Back in the pool: transactions begin as the driver begins them, but where a read or a
    # write says otherwise. (None: it was invalidated, lost.)
    if dbapi_conn is not None and not dbapi_conn.closed:
        dbapi_conn.autocommit = False


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Driver-level autocommit: the "begin" listener issues BEGIN itself.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "busy_timeout=30000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
