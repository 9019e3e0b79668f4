"""What a start costs: counted from the process's start, without what only the agent needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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


def test_a_server_without_its_agent_does_not_import_it(tmp_path: Path) -> None:
    # SQLite with two workers is refused once serve has imported what it needs, before serving.
    code = (
        "import sys\n"
        "from neutrino.cli.main import app\n"
        f"sys.argv = ['neutrino', 'serve', '--workers', '2', '--state-dir', '{tmp_path}']\n"
        "try:\n    app()\nexcept SystemExit as exit:\n    assert exit.code == 2, exit.code\n"
        "print('neutrino.agent' in sys.modules, 'neutrino.app' in sys.modules)"
    )
    assert run(code).split() == ["False", "True"]
