"""Podman in a directory of its own: its storage, runtime files, configuration and CNI networks,
so that a test or a benchmark never touches the machine's containers or their configuration.

Its containers run a root file system made here from the machine's busybox and the libraries
it links (no image, no registry). containers.conf (CONTAINERS_CONF) selects the CNI network
backend with neutrino-cni's directory among the plugins', runc (which also runs where cgroups
are mounted in hybrid mode, where crun does not), cgroupfs, and limits on open files and
processes that any machine grants (podman's defaults exceed some containers' hard limits).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{plugins}", "/usr/lib/cni"]
network_config_dir = "{networks}"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
INDEX = "hello from a container\n"


def busybox_rootfs(path: Path) -> Path:
    """/bin/busybox (and /bin/sh), the libraries it links, and /www/index.html."""
    (path / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", path / "bin/busybox")
    (path / "bin/sh").symlink_to("busybox")
    linked = subprocess.run(["ldd", "/bin/busybox"], capture_output=True, text=True, check=True)
    for library in (word for word in linked.stdout.split() if word.startswith("/")):
        target = path / library.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, target)
    (path / "www").mkdir()
    (path / "www/index.html").write_text(INDEX)
    return path


class Podman:
    def __init__(self) -> None:
        # Short: podman refuses a runroot of more than 50 characters.
        self.root = Path(tempfile.mkdtemp(prefix="neutrino-podman-"))
        self.rootfs = busybox_rootfs(self.root / "rootfs")
        self.networks = self.root / "networks"
        self.networks.mkdir()
        self.conf = self.root / "containers.conf"
        self.conf.write_text(CONTAINERS_CONF.format(plugins=VENV_BIN, networks=self.networks))

    def network(self, name: str, plugin: dict[str, Any]) -> None:
        """A CNI network `name` of the one plugin `plugin` (its "type" is neutrino-cni)."""
        conflist = {
            "cniVersion": "1.0.0",
            "name": name,
            "plugins": [{"type": "neutrino-cni", **plugin}],
        }
        (self.networks / f"{name}.conflist").write_text(json.dumps(conflist, indent=1))

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        where = ("--root", self.root / "storage", "--runroot", self.root / "run")
        done = subprocess.run(
            ["podman", *map(str, where), "--tmpdir", str(self.root / "tmp"), *args],
            env={**os.environ, "CONTAINERS_CONF": str(self.conf)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert not check or done.returncode == 0, f"podman {' '.join(args)}: {done.stderr}"
        return done

    def start(self, name: str, network: str, *command: str) -> str:
        """A container on `network` running `command` in the background: its ID."""
        done = self(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            network,
            "--rootfs",
            str(self.rootfs),
            *command,
        )
        return done.stdout.strip()

    def close(self) -> None:
        """Every container removed (their networks' DEL run), then the whole directory."""
        self("rm", "--force", "--all", "--time", "0", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
