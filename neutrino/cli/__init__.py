"""The `neutrino` command: it runs the service, and talks to it only over its public HTTP APIs."""
