"""Netfilter's netlink on the real kernel, through the one socket each thread keeps."""

from __future__ import annotations

import subprocess

from netlab import Lab

from neutrino.agent.drivers import netns as ns
from neutrino.agent.drivers import nfnetlink


def test_one_kept_socket_answers_each_request_with_its_own_answers(lab: Lab) -> None:
    netns = f"{lab.prefix}nfnl"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    worker = ns.NetnsThread(netns)

    def nft(command: str) -> None:
        subprocess.run(["ip", "netns", "exec", netns, "nft", command], check=True)

    try:
        # `generation` stops reading at the generation, before the kernel's acknowledgement:
        # each next request on the same socket must pass over what is left.
        known = worker.call(nfnetlink.generation)
        for command in (
            "add table ip t",
            "add map ip t m { type ipv4_addr : ipv4_addr; }",
            "add element ip t m { 10.0.0.1 : 10.1.0.1, 10.0.0.2 : 10.1.0.2 }",
            "delete element ip t m { 10.0.0.1 }",
        ):
            nft(command)
            assert worker.call(nfnetlink.generation) == known + 1
            known += 1
        assert worker.call(lambda: nfnetlink.ipv4_map("t", "m")) == {"10.0.0.2": "10.1.0.2"}
        assert worker.call(lambda: nfnetlink.ipv4_map("t", "none")) is None
        assert worker.call(nfnetlink.generation) == known
        assert worker.call(lambda: nfnetlink.table_description("t", ("m",))) is not None
    finally:
        worker.close()
        subprocess.run(["ip", "netns", "delete", netns], check=True)
