"""One agent at a time on a state directory, and teardown waits for the one that runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neutrino.agent import running
from neutrino.cli import main


def test_a_state_directory_is_held_by_one_at_a_time(tmp_path: Path) -> None:
    first = running.hold(tmp_path)
    assert first is not None
    assert running.hold(tmp_path) is None  # another open file, as another process has
    first.close()
    second = running.hold(tmp_path)
    assert second is not None
    second.close()


def test_a_lock_is_taken_once_its_holder_lets_go(tmp_path: Path) -> None:
    holder = running.hold(tmp_path)
    assert holder is not None
    threading.Timer(0.3, holder.close).start()
    started = time.monotonic()
    lock = running.hold(tmp_path, wait=5)
    assert lock is not None and 0.2 < time.monotonic() - started < 2
    lock.close()


def test_teardown_refuses_while_the_agent_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "STOPPING", 0.2)
    agent_state = tmp_path / "agent"
    holder = running.hold(agent_state)
    assert holder is not None
    (agent_state / "kept").write_text("")
    result = CliRunner().invoke(
        main.app, ["teardown", "--state-dir", str(tmp_path), "--netns-prefix", "nothere-"]
    )
    holder.close()
    assert result.exit_code == 1
    assert "still runs from" in " ".join(result.output.split())
    assert (agent_state / "kept").exists()  # nothing was removed
