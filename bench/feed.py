"""Change feed compaction: what a pass costs on a long log, and on what came since.

Fills a fresh SQLite database with `--changes` feed entries spread over
`--resources` ports (a log that was never compacted), then times the first
compaction pass (what a server does once after a start) and a pass after
`--since` more changes (what it does every minute). Prints JSON; needs no
root and leaves nothing behind.

    .venv/bin/python -m bench.feed [--changes 200000] [--resources 20000] [--since 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select, update

from neutrino.db import Database, schema
from neutrino.services import common, feed


def append(db: Database, first: int, count: int, resources: int) -> None:
    """`count` port updates from revision `first` on, each on a random one of `resources` ports."""
    moment = common.now()
    with db.write() as conn:
        conn.execute(
            insert(schema.changes),
            [
                {
                    "revision": first + i,
                    "resource_type": "port",
                    "resource_id": f"port-{random.randrange(resources)}",
                    "op": "update",
                    "at": moment,
                }
                for i in range(count)
            ],
        )
        conn.execute(update(schema.feed_head).values(revision=first + count - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=200_000)
    parser.add_argument("--resources", type=int, default=20_000)
    parser.add_argument("--since", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        db = Database(f"sqlite:///{Path(scratch) / 'feed.db'}")
        db.migrate()
        append(db, 1, args.changes, args.resources)
        compactor = feed.Compactor()
        started = time.perf_counter()
        first = compactor.compact(db)
        first_seconds = time.perf_counter() - started
        append(db, args.changes + 1, args.since, args.resources)
        started = time.perf_counter()
        later = compactor.compact(db)
        later_seconds = time.perf_counter() - started
        with db.read() as conn:
            left = conn.execute(select(func.count()).select_from(schema.changes)).scalar_one()
        db.dispose()
    print(
        json.dumps(
            {
                "benchmark": "feed",
                "changes": args.changes,
                "resources": args.resources,
                "first_pass": {"seconds": round(first_seconds, 3), "removed": first},
                "pass_after_new_changes": {
                    "changes": args.since,
                    "ms": round(later_seconds * 1000, 1),
                    "removed": later,
                },
                "entries_left": left,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
