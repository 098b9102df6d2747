"""One writer process of the fault suite: ``python tests/faults/worker.py MODE DB ...``.

Every worker first waits at a barrier (``FAULTS_BARRIER``: it writes ``ready-PID``
there, then waits for ``go``), so all writers of a run start writing together instead
of one after the other as their interpreters finish importing.

Modes:
- ``cli DB ARG...``: one ``ledger`` command (the real CLI: ``ledger.cli.main``); exit
  code and output are the command's.
- ``cli-twice DB ARG...``: the same command twice (a retried request): the second
  must be a no-op that succeeds.
- ``ship-loop DB EXPORTER N``: ``ledger ship record`` N times in a row, each one a
  fresh command (opening the ledger anew), the way a script calling the CLI would.
- ``catch-up DB STOPFILE``: the deploy's projections service: catch the read models
  up, again and again, until STOPFILE exists, then once more.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

BARRIER_TIMEOUT_S = 180.0


def wait_at_barrier() -> None:
    folder = os.environ.get("FAULTS_BARRIER")
    if not folder:
        return
    barrier = Path(folder)
    (barrier / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("faults worker: no 'go' at the barrier")
        time.sleep(0.01)


def run_cli(db: str, args: list[str]) -> int:
    from ledger.cli import main

    try:
        main.main(args=["--db", db, *args], prog_name="ledger", standalone_mode=True)
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    return 0


def ship_loop(db: str, exporter: str, n: int) -> int:
    failures = 0
    for i in range(n):
        code = run_cli(db, ["ship", "record", "--exporter", exporter, "--ref", f"{exporter}-{i}",
                            "--date", "2025-03-01", "--to", "MX" if i % 2 else "AE",
                            "--consignee", f"{exporter}-c", "--product", "nvidia-h100-sxm",
                            "--quantity", str(1 + i)])
        failures += code != 0
    return 1 if failures else 0


def catch_up(db: str, stop: Path) -> int:
    from ledger.application import Ledger
    from projections.readmodel import ReadModel

    ledger = Ledger(db, create=False)
    try:
        model = ReadModel(ledger)
        while not stop.exists():
            model.catch_up()
            time.sleep(0.05)
        model.catch_up()
    finally:
        ledger.close()
    return 0


def main(argv: list[str]) -> int:
    mode, db, *rest = argv
    # import the ledger before the barrier: the race is about writing, not start-up
    import importlib

    for module in ("ledger.application", "ledger.cli.imports", "ledger.cli.ship",
                   "ledger.commands", "ledger.decide", "projections.readmodel"):
        importlib.import_module(module)

    wait_at_barrier()
    if mode == "cli":
        return run_cli(db, rest)
    if mode == "cli-twice":
        return run_cli(db, rest) or run_cli(db, rest)
    if mode == "ship-loop":
        return ship_loop(db, rest[0], int(rest[1]))
    if mode == "catch-up":
        return catch_up(db, Path(rest[0]))
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
