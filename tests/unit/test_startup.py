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


def test_the_dashboard_lab_and_agents_feed_are_made_at_their_first_request(
    tmp_path: Path,
) -> None:
    # A start answers without them; each then answers as it did when made at start.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from starlette.testclient import TestClient\n"
        "from neutrino.app import create_app, prepare\n"
        "from neutrino.config import make_settings\n"
        f"settings = make_settings(Path('{tmp_path}'), None, '127.0.0.1:9696', None)\n"
        "lazy = ('neutrino.web', 'neutrino.api.lab', 'neutrino.api.internal')\n"
        "with TestClient(create_app(settings, prepare(settings))) as client:\n"
        "    print(client.get('/healthz').text, *(name in sys.modules for name in lazy))\n"
        "    page = client.get('/dashboard/login')\n"
        "    missing = client.get('/dashboard/nowhere').status_code\n"
        "    print(page.status_code, 'Sign in' in page.text, missing)\n"
        "    lab = client.get('/lab/v1/instances').json()['error']['code']\n"
        "    feed = client.get('/internal/v1/snapshot').json()['error']['code']\n"
        "    print(lab, feed, *(name in sys.modules for name in lazy))\n"
    )
    assert run(code).splitlines() == [
        "ok False False False",
        "200 True 404",
        "401 401 True True True",
    ]
