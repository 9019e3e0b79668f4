"""OpenStack's Neutron or Octavia API test suite against a fresh neutrino, scored by the expected
failures.

Starts `neutrino serve` with its agent under a namespace prefix of its own, on a fresh SQLite
database; creates the external flat network tempest needs and default subnet pools; writes
tempest.conf from the server's own /v2.0/extensions (and, for Octavia, its load-balancer
providers); runs the suite's selection with stestr; retries the unexpected failures once (tests
that leak into a shared quota fail in an order-dependent way) and names those that passed only
then; prints the results per module and
compares the failures with the suite's expected-failure list. Everything it made goes, pass,
fail or interrupt.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from neutrino.client import Cloud, Session

ROOT = Path(__file__).resolve().parents[2]
EXCLUDE = r"\.scenario\."


@dataclass(frozen=True)
class Suite:
    title: str
    include: str
    expected: Path
    settings: str  # tempest.conf's sections of this suite's own
    # stestr keeps a class's tests on one worker (tempest's group_regex); split, each worker that
    # runs some of a class sets the class up for itself.
    split_classes: bool = False
    concurrency: int = 2  # stestr's workers, unless told


SUITES = {
    "neutron": Suite(
        "Neutron",
        r"^(tempest\.api\.network|neutron_tempest_plugin\.api)",
        Path(__file__).with_name("neutron-expected-failures.txt"),
        "",
    ),
    # Octavia's API tests wait for every object to go ACTIVE, so the load balancers are real (no
    # noop drivers) and the waits short: the agent realizes a change in about a second. Their
    # skip checks demand compute and image too, although the API tests boot nothing. The roles
    # are Keystone's defaults (admin, member, reader), the tests' default and upstream's default
    # job; the load-balancer_* roles are honoured as well, see services/lb_policy.py.
    "octavia": Suite(
        "Octavia",
        r"^octavia_tempest_plugin\.tests\.api",
        Path(__file__).with_name("octavia-expected-failures.txt"),
        """
[service_available]
load_balancer = true
nova = true
glance = true
# barbican-tempest-plugin's option: the TERMINATED_HTTPS tests keep their certificates in
# neutrino's key manager.
barbican = true

[load_balancer]
test_with_noop = false
provider = {provider}
enabled_provider_drivers = {providers}
RBAC_test_type = keystone_default_roles
# IPv6 VIPs serve as soon as their load balancer is ACTIVE (added without duplicate address
# detection, see plan/loadbalancer.py).
test_with_ipv6 = true
# The zone neutrino's agents report unless configured otherwise.
availability_zone = nova
expected_flavor_capability = {flavor_capabilities}
expected_availability_zone_capability = {availability_zone_capabilities}
# The agent realizes a change in a few tenths of a second: polled every half second, each wait
# for it took about twice that.
build_interval = 0.1
build_timeout = 30
check_interval = 0.1
check_timeout = 30
lb_build_interval = 0.1
lb_build_timeout = 30
""",
        # Two member classes hold 250 of the 632 tests: kept whole, they are most of the wall time.
        split_classes=True,
        # Its tests wait for the agent more than they compute: with two workers the cores idle
        # 59% of the time, with four 36%, and the suite takes 5m51s instead of 6m33s.
        concurrency=4,
    ),
}
ADMIN_PASSWORD = "conformance-" + secrets.token_hex(8)
EXTERNAL_NETWORK = "public"
DEFAULT_SUBNETPOOLS = [
    ("shared-default-subnetpool-v4", "10.0.0.0/22", 26),
    ("shared-default-subnetpool-v6", "2001:db8:8000::/48", 64),
]
# What the gate configures: ports keep their dns_name only with a domain of one's own.
DNS_DOMAIN = "openstackgate.local"
# The default quotas of neutron-tempest-plugin's jobs (zuul.d/base.yaml, neutron-tempest-plugin-
# base: $NEUTRON_CONF [QUOTAS]): a class's tests share one project, and RoutersTest alone makes
# more than Neutron's 10 routers.
DEFAULT_QUOTAS = {
    "router": 100,
    "floatingip": 500,
    "security_group": 150,
    "security_group_rule": 1000,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite-venv", type=Path, required=True, help="virtualenv with tempest")
    parser.add_argument("--suite", choices=sorted(SUITES), default="neutron")
    parser.add_argument("--regex", help="run only the suite's tests matching")
    parser.add_argument("--concurrency", type=int, help="stestr's workers (2; Octavia's 4)")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="copy the tempest workspace (tempest.conf, logs, subunit streams) "
        "and the server's log to DIR",
    )
    args = parser.parse_args()
    suite = SUITES[args.suite]
    # SIGTERM unwinds like Ctrl-C, through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="neutrino-conformance-"))
    prefix = f"cf{secrets.token_hex(3)}-"
    state = work / "state"
    server = None
    try:
        server, url = start_server(state, prefix, work / "server.log")
        workspace = prepare_workspace(args.suite_venv.resolve(), work, url, state, suite)
        results = run_suite(
            args.suite_venv.resolve(),
            workspace,
            args.regex or suite.include,
            args.concurrency or suite.concurrency,
            set(read_expected(suite.expected)),
            ["--group-regex", "^$"] if suite.split_classes else [],
        )
        if args.keep:
            shutil.copytree(workspace, args.keep, dirs_exist_ok=True)
            shutil.copy(work / "server.log", args.keep)
        return report(suite, results, time.monotonic() - started)
    finally:
        if server is not None:
            stop(server)
            teardown = subprocess.run(
                [
                    str(ROOT / ".venv/bin/neutrino"),
                    "teardown",
                    "--host",
                    "conformance",
                    "--state-dir",
                    str(state),
                    "--netns-prefix",
                    prefix,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if teardown.returncode:
                print(
                    f"neutrino teardown failed:\n{teardown.stdout}{teardown.stderr}",
                    file=sys.stderr,
                )
        shutil.rmtree(work, ignore_errors=True)


def start_server(state: Path, prefix: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/neutrino"),
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                "--state-dir",
                str(state),
                "--physnet",
                "default:100:199",
                "--host",
                "conformance",
                "--netns-prefix",
                prefix,
                "--log-level",
                "warning",
                "--dns-domain",
                DNS_DOMAIN,
                *(f"--default-quota={r}={limit}" for r, limit in DEFAULT_QUOTAS.items()),
            ],
            env={**os.environ, "NEUTRINO_ADMIN_PASSWORD": ADMIN_PASSWORD},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"neutrino serve exited:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop(process)
    raise SystemExit("neutrino serve did not become healthy in 60 s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def prepare_workspace(venv: Path, work: Path, url: str, state: Path, suite: Suite) -> Path:
    """A tempest workspace of its own (registry included); its tempest.conf describes the server."""
    session = Session(Cloud.load("neutrino-admin", state / "clouds.yaml"))
    try:
        network = session.endpoint("network")
        external = session.call(
            "POST",
            f"{network}/v2.0/networks",
            json={
                "network": {
                    "name": EXTERNAL_NETWORK,
                    "router:external": True,
                    "provider:network_type": "flat",
                    "provider:physical_network": "default",
                }
            },
        )["network"]
        session.call(
            "POST",
            f"{network}/v2.0/subnets",
            json={
                "subnet": {
                    "name": f"{EXTERNAL_NETWORK}-subnet",
                    "network_id": external["id"],
                    "ip_version": 4,
                    "cidr": "172.24.4.0/24",
                    "enable_dhcp": False,
                }
            },
        )
        # Shared default subnet pools, as DevStack makes them: auto-allocated topologies take
        # their subnets from these.
        for name, prefix, length in DEFAULT_SUBNETPOOLS:
            session.call(
                "POST",
                f"{network}/v2.0/subnetpools",
                json={
                    "subnetpool": {
                        "name": name,
                        "prefixes": [prefix],
                        "default_prefixlen": length,
                        "shared": True,
                        "is_default": True,
                    }
                },
            )
        extensions = session.call("GET", f"{network}/v2.0/extensions")["extensions"]
        aliases = sorted(e["alias"] for e in extensions)
        lbaas = f"{session.endpoint('load-balancer')}/v2/lbaas"
        providers = session.call("GET", f"{lbaas}/providers")["providers"]
        # The capability tests look for one the provider lists, with its description.
        capability = {
            kind: session.call("GET", f"{lbaas}/providers/{providers[0]['name']}/{kind}")[kind][0]
            for kind in ("flavor_capabilities", "availability_zone_capabilities")
        }
    finally:
        session.close()
    workspace, defaults = work / "workspace", work / "tempest-etc"
    defaults.mkdir()  # or tempest init makes ~/.tempest/etc
    subprocess.run(
        [
            str(venv / "bin/tempest"),
            "init",
            "--config-dir",
            str(defaults),
            "--workspace-path",
            str(work / "workspaces.yaml"),
            "--name",
            "neutrino",
            str(workspace),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (workspace / "etc/tempest.conf").write_text(
        (TEMPEST_CONF + suite.settings).format(
            url=url,
            password=ADMIN_PASSWORD,
            logs=workspace / "logs",
            external=external["id"],
            # A flat network's default MTU is all its physical network carries.
            external_name=EXTERNAL_NETWORK,
            extensions=",".join(aliases),
            max_mtu=external["mtu"],
            dns_domain=DNS_DOMAIN,
            # The first is the default; the others are aliases of it.
            provider=providers[0]["name"],
            providers=",".join(f"{p['name']}:{p['description']}" for p in providers),
            **{
                kind: f"{found['name']}:{found['description']}"
                for kind, found in capability.items()
            },
        )
    )
    return workspace


TEMPEST_CONF = """\
[DEFAULT]
log_dir = {logs}
log_file = tempest.log

[auth]
admin_username = admin
admin_password = {password}
admin_project_name = admin
admin_domain_name = Default
use_dynamic_credentials = true
create_isolated_networks = false

[identity]
uri_v3 = {url}/identity/v3
auth_version = v3
region = RegionOne

[identity-feature-enabled]
api_v2 = false
api_v3 = true

[service_available]
neutron = true
nova = false
glance = false
cinder = false
swift = false
horizon = false

[network]
public_network_id = {external}
floating_network_name = {external_name}
project_networks_reachable = false

[network-feature-enabled]
api_extensions = {extensions}
ipv6 = true
ipv6_subnet_attributes = true
port_security = true

[neutron_plugin_options]
available_type_drivers = flat,vlan,vxlan
provider_vlans = default
max_mtu = {max_mtu}
dns_domain = {dns_domain}
agent_availability_zone = nova

[validation]
run_validation = false
"""


def run_suite(
    venv: Path,
    workspace: Path,
    regex: str,
    concurrency: int,
    expected: set[str],
    scheduling: list[str],
) -> dict[str, str]:
    """Each selected test's outcome: success, fail, skip or "not run" (a class setup failed).
    Only failures not `expected` are run again: the expected ones would fail once more.
    `scheduling`: stestr's options of how tests are grouped on workers."""
    stestr = str(venv / "bin/stestr")
    listed = subprocess.run(
        [stestr, "list", "--exclude-regex", EXCLUDE, regex],
        cwd=workspace,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    print(f"running {len(listed)} tests at concurrency {concurrency}", flush=True)
    outcomes = stestr_run(
        [stestr, *scheduling],
        workspace,
        ["--concurrency", str(concurrency), "--exclude-regex", EXCLUDE, regex],
        listed,
    )
    again = [
        test
        for test in listed
        if outcomes[test] in ("fail", "not run") and test_id(test) not in expected
    ]
    if again:
        print(
            f"running the {len(again)} unexpected failures once more, one at a time",
            flush=True,
        )
        (workspace / "again.txt").write_text("\n".join(again) + "\n")
        retried = stestr_run(
            [stestr],
            workspace,
            ["--concurrency", "1", "--load-list", str(workspace / "again.txt")],
            again,
        )
        outcomes.update(retried)
        passed = [test_id(test) for test in again if retried[test] == "success"]
        print(f"{len(passed)} of them passed on the retry", *passed, sep="\n  ")
    return {test_id(test): outcome for test, outcome in outcomes.items()}


def stestr_run(
    stestr: list[str], workspace: Path, options: list[str], tests: list[str]
) -> dict[str, str]:
    process = subprocess.Popen(
        [*stestr, "run", "--subunit", *options],
        cwd=workspace,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stream, _ = process.communicate()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    runs = len(list(workspace.glob("run-*.subunit")))
    (workspace / f"run-{runs + 1}.subunit").write_bytes(stream)
    # subunit2csv exits 1 when the stream holds a failure: only its table counts.
    converted = subprocess.run(
        [str(Path(stestr[0]).with_name("subunit2csv"))],
        input=stream,
        capture_output=True,
        check=False,
    )
    if converted.returncode not in (0, 1) or not converted.stdout:
        raise SystemExit(f"subunit2csv failed: {converted.stderr.decode()}")
    table = converted.stdout.decode()
    reported = {row["test"]: row["status"] for row in csv.DictReader(io.StringIO(table))}
    # A class skipped or failed as a whole reports once, as `setUpClass (module.Class)`.
    classes = {
        match[1]: status
        for test, status in reported.items()
        if (match := CLASS_LEVEL.match(test)) and status != "success"
    }
    return {
        test: status_of(reported.get(test), classes.get(test_id(test).rsplit(".", 1)[0]))
        for test in tests
    }


CLASS_LEVEL = re.compile(r"^setUpClass \((.+)\)$")


def status_of(status: str | None, class_status: str | None) -> str:
    if status is None:
        return "skip" if class_status == "skip" else "not run"
    return {"success": "success", "skip": "skip", "xfail": "success"}.get(status, "fail")


def test_id(listed: str) -> str:
    """The id without tempest's attributes: `m.Class.test_x[id-...,smoke]` -> `m.Class.test_x`."""
    return listed.split("[", 1)[0]


def module_of(test: str) -> str:
    return test.rsplit(".", 2)[0]


def read_expected(path: Path) -> dict[str, str]:
    expected = {}
    for line in path.read_text().splitlines():
        test, _, reason = line.partition("#")
        if test.strip():
            expected[test.strip()] = reason.strip()
    return expected


def report(suite: Suite, results: dict[str, str], seconds: float) -> int:
    columns = ("success", "fail", "skip", "not run")
    per_module: dict[str, Counter[str]] = {}
    for test, outcome in results.items():
        per_module.setdefault(module_of(test), Counter())[outcome] += 1
    print(f"\n{'module':<72} {'pass':>5} {'fail':>5} {'skip':>5} {'notrun':>6}")
    for module in sorted(per_module):
        counts = per_module[module]
        widths = [6 if c == "not run" else 5 for c in columns]
        print(f"{module:<72} " + " ".join(f"{counts[c]:>{w}}" for c, w in zip(columns, widths)))
    expected = read_expected(suite.expected)
    failing = {test for test, outcome in results.items() if outcome in ("fail", "not run")}
    unexpected = sorted(failing - expected.keys())
    fixed = sorted(test for test in expected if results.get(test) == "success")
    if fixed:
        print("\nexpected to fail but passed (remove them from the list):")
        print("\n".join(f"  {test}" for test in fixed))
    if unexpected:
        print("\nfailed and not on the expected-failure list:")
        print("\n".join(f"  {test} ({results[test]})" for test in unexpected))
    totals = Counter(results.values())
    minutes, secs = divmod(int(seconds), 60)
    print(
        f"\n{suite.title} API conformance: {totals['success']} passed, {totals['fail']} failed, "
        f"{totals['skip']} skipped, {totals['not run']} not run "
        f"({len(failing & expected.keys())} of the failed or not run expected, "
        f"{len(unexpected)} unexpected) in {minutes}m{secs:02d}s"
    )
    return 1 if unexpected else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; what the run made is removed")
