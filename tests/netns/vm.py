"""Virtual machines under QEMU on neutrino ports, for the data-plane tests.

The machine is the one scripts/vm-image builds from Debian packages: Debian's
kernel and a busybox initramfs whose init takes eth0's address by DHCP, serves
HTTP on ports 80 and 8080 (answering "<hostname> <address>") and runs a shell
on the serial console, which the test reaches through a Unix socket. Its NIC
is a tap that QEMU makes in the host's namespace, named and addressed as the
port says, as Nova starts a VM; the port's binding gets it plugged.
"""

from __future__ import annotations

import functools
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).parents[2]
QEMU = "qemu-system-x86_64"
BOOT_TIMEOUT = 180.0  # under TCG on a loaded machine; with KVM a boot takes a second or two


def build_image(directory: Path) -> Path:
    """The kernel and a new initramfs in `directory` (the packages are fetched once)."""
    subprocess.run([str(REPO / "scripts" / "vm-image"), str(directory)], check=True)
    return directory


def qemu_command(
    image: Path, name: str, tap: str, mac: str, console: Path, accel: list[str]
) -> list[str]:
    """QEMU for a VM whose one NIC is the tap `tap` with the port's MAC (as in the README)."""
    return [
        QEMU,
        *accel,
        "-m",
        "256",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-kernel",
        str(image / "vmlinux"),
        "-initrd",
        str(image / "initramfs.gz"),
        "-append",
        f"console=ttyS0 quiet panic=-1 hostname={name}",
        "-chardev",
        f"socket,id=console,path={console},server=on,wait=off,logfile={console}.log",
        "-serial",
        "chardev:console",
        "-netdev",
        f"tap,id=nic0,ifname={tap},script=no,downscript=no",
        "-device",
        f"virtio-net-pci,netdev=nic0,mac={mac}",
    ]


@functools.cache
def accelerator(image: Path) -> tuple[str, ...]:
    """KVM where it works, else TCG. /dev/kvm may be there and still run no guest (in a VM
    without nested virtualization QEMU fails on a CPU register, or the guest never starts):
    with KVM, a kernel without its initramfs boots to its panic, and QEMU exits, in seconds."""
    kvm = ("-accel", "kvm", "-cpu", "host")
    if not Path("/dev/kvm").exists():
        return ("-accel", "tcg")
    probe = [QEMU, *kvm, "-m", "128", "-nodefaults", "-display", "none", "-no-reboot"]
    probe += ["-kernel", str(image / "vmlinux"), "-append", "console=ttyS0 panic=-1"]
    try:
        booted = subprocess.run(
            [*probe, "-serial", "stdio"], capture_output=True, timeout=15, check=False
        )
    except subprocess.TimeoutExpired:
        return ("-accel", "tcg")
    return kvm if b"Linux version" in booted.stdout else ("-accel", "tcg")


@dataclass
class Vm:
    name: str
    process: subprocess.Popen[bytes]
    console_log: Path
    console: socket.socket

    def run(self, command: str, timeout: float = 20.0) -> str:
        """The output of `command` run by the VM's shell (an AssertionError if it fails)."""
        token = secrets.token_hex(4)
        # The terminal echoes the line as typed; the markers' quotes are only in that echo.
        self.console.sendall(f"echo {token}''begin; {command}; echo {token}''end $?\n".encode())
        found = re.search(
            rf"{token}begin\r?\n(.*?){token}end (\d+)",
            self._read_until(f"{token}end \\d+\r?\n", timeout),
            re.DOTALL,
        )
        assert found is not None
        assert found[2] == "0", f"{command} in {self.name}: exit status {found[2]}\n{found[1]}"
        return found[1].replace("\r", "")

    def _read_until(self, pattern: str, timeout: float) -> str:
        seen = ""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, seen):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}'s console: no {pattern!r} in {seen!r}")
            self.console.settimeout(left)
            seen += self.console.recv(65536).decode(errors="replace")
        return seen

    def ipv4(self) -> str | None:
        """eth0's IPv4 address, as the VM itself sees it."""
        fields = self.run("ip -4 -o addr show dev eth0").split()
        return fields[3].split("/")[0] if len(fields) > 3 else None

    def boot_log(self) -> str:
        return self.console_log.read_text(errors="replace")


@contextmanager
def qemu_vm(image: Path, name: str, netns: str, tap: str, mac: str, state: Path) -> Iterator[Vm]:
    """A VM whose NIC is the tap `tap` in `netns` (the agent's host), running until the block
    ends, pass or fail: then QEMU is killed, and its tap goes with it."""
    state.mkdir(parents=True, exist_ok=True)
    console = state / f"{name}.console"
    command = qemu_command(image, name, tap, mac, console, list(accelerator(image)))
    qemu_log = state / f"{name}.qemu.log"
    with qemu_log.open("wb") as log:
        process = subprocess.Popen(
            ["ip", "netns", "exec", netns, *command], stdout=subprocess.DEVNULL, stderr=log
        )
    sock = socket.socket(socket.AF_UNIX)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                sock.connect(str(console))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert process.poll() is None, qemu_log.read_text()
                assert time.monotonic() < deadline, "QEMU made no console socket"
                time.sleep(0.05)
        vm = Vm(name, process, Path(f"{console}.log"), sock)
        vm._read_until("vm ready", BOOT_TIMEOUT)
        yield vm
    finally:
        sock.close()
        process.kill()
        process.wait()
