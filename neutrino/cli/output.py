"""Where the `neutrino` command writes: data appears exactly as it is.

Names, MAC addresses and kernel output are data, and data may contain `[bold]`
or `:ab:`, which Rich would read as markup or an emoji code (a MAC address
`fa:16:3e:ab:e9:72` printed as `fa:16:3e🆎e9:72`). Every console of the command
is made here with both off; the command's own emphasis is given as styles
(`Text.assemble`), never as markup in a string.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from neutrino.client import ClientError


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, markup=False, emoji=False)


out, err = console(), console(stderr=True)


def fail(error: ClientError) -> NoReturn:
    err.print(Text.assemble(("error:", "red"), f" {error}"), soft_wrap=True)
    raise typer.Exit(1)
