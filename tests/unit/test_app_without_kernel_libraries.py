"""The API server touches no kernel: it runs where nftables' Python binding is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SERVE_WITHOUT_NFTABLES = """
import sys
from pathlib import Path
sys.modules["nftables"] = None  # `import nftables` fails, as where the binding is not installed
from starlette.testclient import TestClient
from neutrino.app import create_app, prepare
from neutrino.config import make_settings
settings = make_settings(Path(sys.argv[1]), None, "127.0.0.1:9696", ["default"])
core = prepare(settings)
with TestClient(create_app(settings, core)) as client:
    print(client.get("/healthz").text, client.get("/lab/v1/instances").status_code)
core.db.dispose()
"""


def test_the_api_server_starts_without_nftables(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_NFTABLES, str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Up, and the lab API answers (401: it wants a token).
    assert done.stdout.split() == ["ok", "401"]
