"""deploy/compose.yaml parses, and what it asks of the ledger image exists.

Docker cannot run here, so this checks the next best thing: every ``ledger`` command
a service runs is a registered CLI command whose options exist, and every
environment variable given to a ledger service is one the project reads (a click
``envvar``, or a setting read from the environment in the source). A command the
compose file runs that the CLI lacks (``consume`` included) fails the test: an image
built from this tree would crash-loop.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def ledger_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose()["services"].items()
            if svc.get("image", "").startswith("quota-ledger")}


def cli_command(path: list[str]) -> click.Command | None:
    """The click command for ``ledger <path...>``, or None if not registered."""
    from ledger.cli import main

    ctx = click.Context(main)
    cmd: click.Command | None = main
    for name in path:
        if not isinstance(cmd, click.Group):
            break
        cmd = cmd.get_command(ctx, name)
        if cmd is None:
            return None
    return cmd


def known_env_vars() -> set[str]:
    """Environment variables the project reads: click envvars of every registered
    command, and names read with os.environ in the source."""
    from ledger.cli import LAZY_COMMANDS, main

    names: set[str] = set()

    def walk(cmd: click.Command) -> None:
        for p in cmd.params:
            if isinstance(p, click.Option) and p.envvar:
                names.update([p.envvar] if isinstance(p.envvar, str) else p.envvar)
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                walk(sub)

    walk(main)
    for name in LAZY_COMMANDS:
        cmd = cli_command([name])  # an ImportError here is a broken command: fail
        assert cmd is not None, f"ledger {name} is listed but not registered"
        walk(cmd)
    pattern = re.compile(r"environ(?:\.get\(|\[)\s*[\"']([A-Z0-9_]+)[\"']")
    for package in ("ledger", "projections", "consumers"):
        for source in (ROOT / package).rglob("*.py"):
            names.update(pattern.findall(source.read_text()))
    return names


def test_compose_parses_with_the_expected_services() -> None:
    services = compose()["services"]
    assert {"postgres", "kafka", "topics", "ledger-init", "consumer",
            "projections"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["consumer"]["deploy"]["replicas"] >= 2
    assert "--if-not-exists" in services["topics"]["command"][0]


def test_dockerfile_builds_the_ledger_cli() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "pip install" in text and "FROM python:3.11" in text
    assert "USER ledger" in text  # not root


@pytest.mark.parametrize("service", sorted(ledger_services()))
def test_ledger_service_runs_a_real_command(service: str) -> None:
    argv = ledger_services()[service]["command"]
    assert argv[0] == "ledger"
    words = [a for a in argv[1:] if not a.startswith("-")]
    path: list[str] = []
    cmd: click.Command | None = None
    for word in words:
        candidate = cli_command([*path, word])
        if candidate is None:
            break
        path.append(word)
        cmd = candidate
        if not isinstance(cmd, click.Group):
            break
    assert cmd is not None and path, f"{service}: 'ledger {' '.join(words[:2])}' is not a command"
    options = {o for p in cmd.params for o in p.opts if o.startswith("--")}
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    assert given <= options, f"{service}: unknown options {given - options}"


@pytest.mark.parametrize("service", sorted(ledger_services()))
def test_ledger_service_env_vars_are_read_by_the_project(service: str) -> None:
    env = ledger_services()[service].get("environment") or {}
    known = known_env_vars()
    unknown = set(env) - known
    assert not unknown, f"{service}: no part of the project reads {sorted(unknown)}"
    assert "LEDGER_DB" in env


def test_the_consumer_service_runs_ledger_consume() -> None:
    """``consume`` is the compose file's reason to exist: it must be a real command
    (not skipped when missing), taking the keyring and the broker from the environment."""
    services = ledger_services()
    assert services["consumer"]["command"][:2] == ["ledger", "consume"]
    consume = cli_command(["consume"])
    assert consume is not None, "ledger consume is not a registered command"
    envvars = {p.envvar for p in consume.params if isinstance(p, click.Option) and p.envvar}
    env = services["consumer"].get("environment") or {}
    assert {"LEDGER_KEYRING", "KAFKA_BOOTSTRAP_SERVERS"} <= set(env) & envvars
