"""What a start costs: counted from the process's start, without what only the agent needs."""

from __future__ import annotations

import subprocess
import sys


def run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def test_the_ready_time_counts_from_the_process_start() -> None:
    code = (
        "import time; time.sleep(0.6)\n"
        "from neutrino.cli.main import since_process_start; print(since_process_start())"
    )
    assert 0.6 <= float(run(code)) < 60


def test_the_server_does_not_import_the_agents_compiler() -> None:
    code = "import sys, neutrino.app; print('neutrino.plan.compile' in sys.modules)"
    assert run(code).strip() == "False"
