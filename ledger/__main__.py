"""``python -m ledger`` runs the CLI (used by tests that run it as a process)."""

from ledger.cli import main

main()
