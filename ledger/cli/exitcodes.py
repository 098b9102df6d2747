"""The ``ledger`` command's exit codes: one table, used by every command.

| code | meaning |
|---|---|
| 0 | success (also when the reader of a pipe stops early: ``ledger ... | head``) |
| 1 | refused input: bad value, conflict, unknown rule or id; nothing written |
| 2 | command-line usage: unknown option, missing or contradictory options |
| 3 | partial import: ``import --skip-bad`` appended the good lines, skipped bad ones |
| 4 | a check failed: ``ledger check`` would breach or is prohibited; ``veu status``
      found a breached limit |
| 5 | the audit found tampering: ``audit verify`` found a break in the chain, or the
      read model differs from the log |
| 70 | internal error (a bug): one line, the traceback with ``LEDGER_DEBUG=1`` |
"""

from __future__ import annotations

OK = 0
REFUSED = 1
USAGE = 2
PARTIAL_IMPORT = 3
CHECK_FAILED = 4
TAMPERED = 5
INTERNAL = 70

#: (code, meaning) in the order the README's table lists them
TABLE: tuple[tuple[int, str], ...] = (
    (OK, "success"),
    (REFUSED, "refused input (bad value, conflict, unknown rule or id); nothing written"),
    (USAGE, "command-line usage (unknown option, missing or contradictory options)"),
    (PARTIAL_IMPORT, "partial import: import --skip-bad appended the good lines"),
    (CHECK_FAILED, "a check failed: the shipment would breach or is prohibited; a VEU "
                   "limit is breached"),
    (TAMPERED, "the audit found tampering (chain break, read model differs)"),
    (INTERNAL, "internal error (a bug)"),
)
