"""SQLite writers take their turn in the order they came."""

from __future__ import annotations

import threading
import time

from neutrino.db import FifoLock


def test_a_writer_that_waited_goes_before_a_latecomer() -> None:
    lock, order = FifoLock(), []

    def writer() -> None:
        with lock:
            order.append("waited")

    with lock:
        waiting = threading.Thread(target=writer)
        waiting.start()
        time.sleep(0.05)  # it is queued by now
    with lock:  # straight after releasing: a plain lock would let this one overtake
        order.append("latecomer")
    waiting.join()
    assert order == ["waited", "latecomer"]
