"""Benchmarks of the quota ledger: see bench/run.py and bench/RESULTS.md."""
