"""neutrino: OpenStack-compatible tenant networking on a real Linux data plane."""

__version__ = "0.1.0"
