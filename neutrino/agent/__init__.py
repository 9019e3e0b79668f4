"""The agent: realizes one host's share of the logical model in the kernel."""

from neutrino.agent.reconciler import Agent, SyncReport

__all__ = ["Agent", "SyncReport"]
