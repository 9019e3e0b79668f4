"""The configuration's parsers: what `neutrino serve` accepts on its command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from neutrino.cli.main import app
from neutrino.config import parse_quota

RESOURCES = ("network", "port")


def test_a_default_quota_takes_what_neutron_would_store() -> None:
    assert parse_quota("network=-1", RESOURCES) == ("network", -1)
    assert parse_quota("port=2147483647", RESOURCES) == ("port", 2**31 - 1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("port=2147483648", "the limit of port must be no larger than 2147483647"),
        ("port=-2", "the limit of port must be an integer, -1 (unlimited) or more"),
        ("port=many", "the limit of port must be an integer, -1 (unlimited) or more"),
        ("widget=3", "'widget' is not a resource with a quota: network, port"),
    ],
)
def test_a_default_quota_neutron_would_refuse_is_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_quota(spec, RESOURCES)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("option", "spec", "message"),
    [
        ("--default-quota", "pool=3", "'pool' is not a resource with a quota: network, subnet"),
        (
            "--default-lb-quota",
            "network=3",
            "'network' is not a resource with a quota: load_balancer",
        ),
        ("--default-lb-quota", "pool=-2", "the limit of pool must be an integer, -1 (unlimited)"),
    ],
)
def test_serve_refuses_a_default_quota_naming_its_option(
    option: str, spec: str, message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["serve", "--state-dir", str(tmp_path), option, spec])
    assert result.exit_code == 2
    refusal = " ".join(result.output.replace("│", " ").split())
    assert f"Invalid value for {option}: {message}" in refusal
    assert not any(tmp_path.iterdir())  # refused before anything started


@pytest.mark.parametrize(
    ("command", "note"),
    [
        (["serve"], "[env: NEUTRINO_STATE_DIR]"),
        (["serve"], "[default: hostname]"),
        (["instance", "list"], "[env: OS_CLOUD]"),
        (["port", "plug"], "[default: this hostname]"),
        (["probe"], "[default: 80]"),
    ],
)
def test_the_help_shows_the_notes_in_brackets(command: list[str], note: str) -> None:
    """Typer's help reads brackets as markup: a note left unescaped vanishes from it."""
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert note in result.output
