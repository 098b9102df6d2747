"""``python -m ledger`` runs the CLI (used by tests that run it as a process)."""

from ledger.cli import main

# guarded: `ledger consume` starts its signature workers with multiprocessing's
# "spawn", which imports the main module again in each worker
if __name__ == "__main__":
    main()
