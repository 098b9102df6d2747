"""deploy/ as an operator runs it: the compose file, the image, the operator's guide.

Docker cannot run here, so this checks the next best thing, each point of the issue
read from the files themselves: every ``ledger`` command a service runs (and every
health check) is a registered CLI command whose options exist; every environment
variable given to a ledger service is one the project reads; Kafka has a listener
for clients outside the compose network; every service has a health check; images
and Python packages are pinned; there is no default database password; the keyring
is a file that ``ledger keygen --keyring`` writes; the backup names the ledger's real
tables with ``pg_dump`` through ``exec -T``; the guide lists its commands in the
order an operator runs them. A command missing from the CLI fails, never skips.
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
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
LOCK = ROOT / "deploy" / "requirements.lock"
GUIDE = ROOT / "deploy" / "README.md"


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


def test_consume_is_a_command() -> None:
    # the consumer service's whole purpose: a missing command is a failure, not a skip
    assert cli_command(["consume"]) is not None


def test_the_consumer_service_runs_ledger_consume_with_its_settings() -> None:
    """The consumer service takes the keyring and the broker from the environment, and
    ``ledger consume`` reads both from there."""
    services = ledger_services()
    assert services["consumer"]["command"][:2] == ["ledger", "consume"]
    consume = cli_command(["consume"])
    assert consume is not None, "ledger consume is not a registered command"
    envvars = {p.envvar for p in consume.params if isinstance(p, click.Option) and p.envvar}
    env = services["consumer"].get("environment") or {}
    assert {"LEDGER_KEYRING", "KAFKA_BOOTSTRAP_SERVERS"} <= set(env) & envvars


def test_kafka_has_a_listener_for_clients_outside_the_compose_network() -> None:
    kafka = compose()["services"]["kafka"]
    env = kafka["environment"]
    listeners = dict(part.split("://") for part in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(part.split("://")
                      for part in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(part.split(":") for part in
                     env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert "EXTERNAL" in listeners and "EXTERNAL" in advertised and "EXTERNAL" in protocols
    port = listeners["EXTERNAL"].rsplit(":", 1)[1]
    assert any(str(p).endswith(f":{port}") for p in kafka["ports"]), kafka["ports"]
    # inside the network the services keep using kafka:9092
    assert advertised["PLAINTEXT"] == "kafka:9092"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "PLAINTEXT"


@pytest.mark.parametrize("service", sorted(compose()["services"]))
def test_every_service_has_a_health_check(service: str) -> None:
    check = compose()["services"][service].get("healthcheck")
    assert check and check.get("test"), f"{service} has no health check"
    test = check["test"]
    if test[0] == "CMD" and test[1] == "ledger":
        words = [w for w in test[2:] if not w.startswith("-")]
        assert cli_command(words) is not None, f"{service}: health check {test}"


def test_images_are_pinned() -> None:
    for name, svc in compose()["services"].items():
        image = svc.get("image", "")
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.match(r"^\d+\.\d+(\.\d+)?", tag), f"{name}: {image!r} needs a release tag"
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM "):
            image = line.split()[1]
            assert re.match(r"^python:\d+\.\d+\.\d+-", image), f"unpinned base {image!r}"


def test_python_packages_are_pinned_within_pyproject() -> None:
    import tomllib

    from packaging.requirements import Requirement

    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        req = Requirement(dep)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{req.name} is not in {LOCK.name}"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} outside {dep!r}"
    text = DOCKERFILE.read_text()
    assert "-r deploy/requirements.lock" in text
    assert "--no-deps ." in text  # the ledger itself resolves nothing more


def test_no_default_database_password() -> None:
    text = COMPOSE.read_text()
    assert "LEDGER_DB_PASSWORD:-" not in text
    assert "${LEDGER_DB_PASSWORD:?" in compose()["services"]["postgres"]["environment"][
        "POSTGRES_PASSWORD"]
    for name, svc in ledger_services().items():
        assert "${LEDGER_DB_PASSWORD:?" in svc["environment"]["LEDGER_DB"], name


def test_the_keyring_is_a_file_that_keygen_writes() -> None:
    data = compose()
    assert data["secrets"]["keyring"]["file"] == "./keyring.json"
    consumer = data["services"]["consumer"]
    assert "keyring" in consumer["secrets"]
    assert consumer["environment"]["LEDGER_KEYRING"] == "/run/secrets/keyring"
    keygen = cli_command(["keygen"])
    assert keygen is not None and "--keyring" in {o for p in keygen.params for o in p.opts}
    assert "ledger keygen" in GUIDE.read_text() and "--keyring deploy/keyring.json" in \
        GUIDE.read_text()


def _section(title: str) -> str:
    text = GUIDE.read_text()
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_backup_names_the_real_tables_and_dumps_through_exec_t() -> None:
    from ledger.persistence import APPLIED_KEYS_TABLE, CHAIN_TABLE

    backup = _section("Backups")
    # the PostgreSQL names (tests/integration/test_deploy_tables.py checks them against
    # a real ledger's database)
    for table in ("ledger_events", CHAIN_TABLE, "ledger_tracking", APPLIED_KEYS_TABLE):
        assert f"`{table}`" in backup, table
    assert "stored_events" not in backup and "notification_tracking" not in backup
    dumps = [line for line in backup.splitlines() if "pg_dump" in line and "compose" in line]
    assert dumps and all(" exec -T " in line for line in dumps), dumps


def test_no_schema_procedure_that_cannot_work() -> None:
    text = GUIDE.read_text()
    assert "POSTGRES_SCHEMA" not in text or "refused" in text
    assert "build into a separate schema" not in text


def test_the_guide_lists_the_commands_in_the_order_an_operator_runs_them() -> None:
    steps = _section("The commands, in order")
    order = ["export LEDGER_DB_PASSWORD", "ledger keygen", "compose -f deploy/compose.yaml up",
             "compose -f deploy/compose.yaml ps", "ledger produce", "ledger quota",
             "scale consumer", "pg_dump", "ledger audit head"]
    at = [steps.find(cmd) for cmd in order]
    assert all(i >= 0 for i in at), dict(zip(order, at, strict=True))
    assert at == sorted(at), dict(zip(order, at, strict=True))
