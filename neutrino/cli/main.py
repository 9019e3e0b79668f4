"""`neutrino`: serve the APIs; more commands join as the data plane grows."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from neutrino.config import make_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(stderr=True)


@app.callback()
def main() -> None:
    """neutrino: OpenStack-compatible tenant networking on a real Linux data plane."""


@app.command()
def serve(
    bind: Annotated[str, typer.Option(help="HOST:PORT to listen on")] = "127.0.0.1:9696",
    database_url: Annotated[Optional[str], typer.Option(help="SQLAlchemy URL; default: SQLite in the state directory")] = None,
    state_dir: Annotated[Optional[Path], typer.Option(help="Where the database, keys and clouds.yaml live [env: NEUTRINO_STATE_DIR]")] = None,
    physnet: Annotated[Optional[list[str]], typer.Option(help="Physical network NAME or NAME:VLAN_MIN:VLAN_MAX (repeatable)")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run the identity, networking and load-balancer APIs on one listener."""
    import uvicorn

    from neutrino.app import create_app, prepare
    from neutrino.identity import client_env

    started = time.monotonic()
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = make_settings(state_dir, database_url, bind, physnet)
    with console.status("preparing the database and identity"):
        core = prepare(settings)
    application = create_app(settings, core)
    console.print(f"neutrino ready in {time.monotonic() - started:.2f}s at [bold]{settings.public_url}[/bold]")
    console.print("Use it with the openstack CLI:")
    for line in client_env(settings):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    uvicorn.run(application, host=settings.bind_host, port=settings.bind_port, log_level=log_level,
                access_log=log_level == "debug")


if __name__ == "__main__":
    app()
