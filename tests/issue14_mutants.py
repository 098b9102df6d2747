"""Re-check the six hand-made mutants of issue 14 (not part of the normal test run).

    .venv/bin/python -m tests.issue14_mutants            # every mutant
    .venv/bin/python -m tests.issue14_mutants 1a 3b      # some of them
    .venv/bin/python -m tests.issue14_mutants --list     # each mutant's id, place, tests

For each mutant: apply its one text change to the source, run the tests said to kill
it (each must fail), then write the file back as it was; at the end run every named
test on the real code (each must pass). Set ``LEDGER_TEST_POSTGRES`` for the PostgreSQL
cases of the audit tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str
    where: str
    old: str
    new: str
    tests: tuple[str, ...]


U = "tests/unit/"
BND = U + "test_boundaries.py::"
REGRANT = U + "test_conflicting_regrants.py::"
AUDIT = U + "test_audit_verify.py::"
ENV = U + "test_envelope.py::"
POOL = U + "test_verify_pool.py::"
ENGINES = ("tests/integration/test_replay_engines.py::"
           "test_the_columnar_engine_at_the_cap_and_on_first_and_last_valid_days")

MUTANTS: tuple[Mutant, ...] = (
    # 1. breach at exactly the cap
    Mutant("1a", "projections/positions.py", "cap_standing (status)",
           '"over-cap" if committed > cap else', '"over-cap" if committed >= cap else',
           (U + "test_positions_cap_standing.py::"
            "test_exactly_on_the_cap_is_within_it_and_one_over_is_over",
            BND + "test_a_shipment_landing_exactly_on_the_cap_is_within_it")),
    Mutant("1b", "projections/positions.py", "_Fold._over (first breach, explain's breach)",
           "cap is not None and self.committed > cap", "cap is not None and self.committed >= cap",
           (BND + "test_a_shipment_landing_exactly_on_the_cap_is_within_it",
            BND + "test_the_replay_marks_the_first_breach_only_past_the_cap",
            BND + "test_a_country_allocation_ending_puts_committed_exactly_at_the_cap_not_over")),
    Mutant("1c", "projections/replay_columnar.py", "first_breaches (replay's first breach)",
           "over = (committed > cap) & capped[country]",
           "over = (committed >= cap) & capped[country]", (ENGINES + "[9500-within-cap]",)),
    # 2. a conflicting re-grant accepted as a no-op
    Mutant("2a", "ledger/decide.py", "_record_shipment (shipment)",
           "if state.recorded.shipment == fields and state.recorded.end_use == cmd.end_use:",
           "if True:",
           (REGRANT + "test_a_conflicting_repeat_is_refused_naming_the_field",
            REGRANT + "test_a_conflicting_shipment_names_both_values")),
    Mutant("2b", "ledger/decide.py", "_record_shipment (shipment, end_use only)",
           "if state.recorded.shipment == fields and state.recorded.end_use == cmd.end_use:",
           "if state.recorded.shipment == fields:",
           (REGRANT + "test_a_conflicting_repeat_is_refused_naming_the_field",)),
    Mutant("2c", "ledger/decide.py", "_grant_allocation (allocation)",
           'if before == fields:\n            return Decision(duplicate=True, note="already '
           'granted, identical")\n        raise ConflictingDuplicate(\n            f"allocation',
           'if True:\n            return Decision(duplicate=True, note="already '
           'granted, identical")\n        raise ConflictingDuplicate(\n            f"allocation',
           (REGRANT + "test_a_conflicting_repeat_is_refused_naming_the_field",)),
    Mutant("2d", "ledger/decide.py", "_grant_veu (VEU)",
           'if before == fields:\n            return Decision(duplicate=True, note="already '
           'granted, identical")\n        raise ConflictingDuplicate(\n            f"VEU',
           'if True:\n            return Decision(duplicate=True, note="already '
           'granted, identical")\n        raise ConflictingDuplicate(\n            f"VEU',
           (REGRANT + "test_a_conflicting_repeat_is_refused_naming_the_field",
            REGRANT + "test_a_conflicting_veu_names_both_values")),
    Mutant("2e", "ledger/decide.py", "_publish_rule (rule revision)",
           "if first.document == doc:", "if True:",
           (REGRANT + "test_a_rule_revision_republished_with_another_document_is_refused",)),
    # 3. audit verify skipping the hash check at the first or last position
    Mutant("3a", "ledger/audit.py", "verify_chain (head: last position)",
           "if expected[p] != c.hash:", "if expected[p] != c.hash and p != last_event:",
           (AUDIT + "test_an_edited_head_event_is_named",
            AUDIT + "test_the_only_event_of_a_one_event_ledger_edited_is_named",
            "tests/integration/audit/test_tampering_ends.py::test_edited_head_event",
            "tests/integration/audit/test_tampering_ends.py::test_edited_only_event_of_a_one_event_ledger",)),
    Mutant("3b", "ledger/audit.py", "verify_chain (first position)",
           "if expected[p] != c.hash:", "if expected[p] != c.hash and prev_pos != 0:",
           (AUDIT + "test_an_edited_first_event_is_named",
            AUDIT + "test_the_only_event_of_a_one_event_ledger_edited_is_named",
            "tests/integration/audit/test_tampering_ends.py::test_edited_first_event",
            "tests/integration/audit/test_tampering_ends.py::test_edited_only_event_of_a_one_event_ledger",)),
    # 4. audit verify without its "recorded time not increasing" check
    Mutant("4a", "ledger/audit.py", "verify_chain (time check gone)",
           "if prev_time is not None and c.recorded_at <= prev_time:", "if False:",
           (AUDIT + "test_recorded_time_going_backwards_is_a_break_even_with_consistent_links",
            AUDIT + "test_recorded_time_equal_to_its_predecessor_is_a_break",
            "tests/integration/audit/test_tampering_ends.py::test_recorded_time_going_backwards",
            "tests/integration/audit/test_tampering_ends.py::test_recorded_time_equal_to_the_predecessor",)),
    Mutant("4b", "ledger/audit.py", "verify_chain (an equal time passes)",
           "if prev_time is not None and c.recorded_at <= prev_time:",
           "if prev_time is not None and c.recorded_at < prev_time:",
           (AUDIT + "test_recorded_time_equal_to_its_predecessor_is_a_break",
            "tests/integration/audit/test_tampering_ends.py::test_recorded_time_equal_to_the_predecessor",)),
    # 5. a payload type's signature not checked
    *(Mutant(f"5{x}", "consumers/envelope.py", f"_decode ({kind})",
             "if verified_key_id != key_id and not public.verify(signature, value):",
             f"if verified_key_id != key_id and b'\"{kind}\"' not in value "
             "and not public.verify(signature, value):",
             tuple(ENV + f"{name}[{kind}]" for name in (
                 "test_every_payload_type_tampered_after_signing_is_refused",
                 "test_every_payload_type_forged_with_another_key_is_refused",
                 "test_every_payload_type_with_a_signature_of_another_message_is_refused")))
      for x, kind in (("a", "shipment.recorded"), ("b", "shipment.corrected"),
                      ("c", "shipment.voided"))),
    *(Mutant(f"5{x}", "consumers/verify.py", f"_verified_key_id, the workers' check ({kind})",
             "        key.verify(base64.b64decode(signature, validate=True), value)",
             f"        if b'\"{kind}\"' not in value:\n"
             "            key.verify(base64.b64decode(signature, validate=True), value)",
             (POOL + "test_a_worker_verifies_every_payload_type_but_no_forgery_or_tampering"
              f"_of_it[{kind}]",))
      for x, kind in (("d", "shipment.recorded"), ("e", "shipment.corrected"),
                      ("f", "shipment.voided"))),
    # 6. first and last valid day of every dated authorization
    Mutant("6a", "ledger/counting.py", "veu_check (VEU first day)",
           'if ship_date < valid_from:\n        return AuthorizationCheck(ref, False, f"VEU',
           'if ship_date <= valid_from:\n        return AuthorizationCheck(ref, False, f"VEU',
           (BND + "test_a_veu_is_valid_from_its_first_to_its_last_day",
            BND + "test_shipments_on_a_veus_first_and_last_day_count_against_the_veu")),
    Mutant("6b", "ledger/counting.py", "veu_check (VEU last day)",
           'if valid_to is not None and ship_date > valid_to:\n        return '
           'AuthorizationCheck(ref, False, f"VEU',
           'if valid_to is not None and ship_date >= valid_to:\n        return '
           'AuthorizationCheck(ref, False, f"VEU',
           (BND + "test_a_veu_is_valid_from_its_first_to_its_last_day",
            BND + "test_shipments_on_a_veus_first_and_last_day_count_against_the_veu")),
    Mutant("6c", "ledger/counting.py", "license_check (license first day)",
           'if ship_date < valid_from:\n        return AuthorizationCheck(ref, False, f"license',
           'if ship_date <= valid_from:\n        return AuthorizationCheck(ref, False, f"license',
           (BND + "test_a_license_is_valid_from_its_first_to_its_last_day",
            BND + "test_shipments_on_a_licenses_first_and_last_day_deplete_it")),
    Mutant("6d", "ledger/counting.py", "license_check (license last day)",
           'if valid_to is not None and ship_date > valid_to:\n        return '
           'AuthorizationCheck(ref, False, f"license',
           'if valid_to is not None and ship_date >= valid_to:\n        return '
           'AuthorizationCheck(ref, False, f"license',
           (BND + "test_a_license_is_valid_from_its_first_to_its_last_day",
            BND + "test_shipments_on_a_licenses_first_and_last_day_deplete_it")),
    Mutant("6e", "projections/positions.py", "lpp_excess_by_key (LPP year's first day)",
           "per_year[row.fields.ship_date.year]",
           "per_year[(row.fields.ship_date - dt.timedelta(days=1)).year]",
           (BND + "test_the_lpp_year_runs_from_january_first_to_december_thirty_first",)),
    Mutant("6f", "projections/positions.py", "lpp_excess_by_key (LPP year's last day)",
           "per_year[row.fields.ship_date.year]",
           "per_year[(row.fields.ship_date + dt.timedelta(days=1)).year]",
           (BND + "test_the_lpp_year_runs_from_january_first_to_december_thirty_first",)),
    Mutant("6g", "ledger/rulebook.py", "Period.contains (cap period's first day)",
           "return self.start <= day <= self.end", "return self.start < day <= self.end",
           (BND + "test_the_cap_period_counts_its_first_and_last_day_only",)),
    Mutant("6h", "ledger/rulebook.py", "Period.contains (cap period's last day)",
           "return self.start <= day <= self.end", "return self.start <= day < self.end",
           (BND + "test_the_cap_period_counts_its_first_and_last_day_only",)),
    Mutant("6i", "ledger/rulebook.py", "Enforcement.enforced_on (enforcement's first day)",
           "if self.begins is None or day < self.begins:",
           "if self.begins is None or day <= self.begins:",
           (BND + "test_enforcement_covers_begins_and_ends_the_day_suspended_or_rescinded",
            BND + "test_each_revision_governs_from_its_first_enforced_day",
            BND + "test_the_quota_in_force_changes_revision_on_the_enforcement_day")),
    Mutant("6j", "ledger/rulebook.py", "Enforcement.enforced_on (last day before suspension)",
           "if self.suspended is not None and day >= self.suspended:\n            return False\n"
           "        return not (self.rescinded is not None and day >= self.rescinded)\n\n\n"
           "class Tiers",
           "if self.suspended is not None and day > self.suspended:\n            return False\n"
           "        return not (self.rescinded is not None and day >= self.rescinded)\n\n\n"
           "class Tiers",
           (BND + "test_enforcement_covers_begins_and_ends_the_day_suspended_or_rescinded",)),
    Mutant("6k", "ledger/rulebook.py", "Enforcement.enforced_on (last day before rescission)",
           "        return not (self.rescinded is not None and day >= self.rescinded)\n\n\n"
           "class Tiers",
           "        return not (self.rescinded is not None and day > self.rescinded)\n\n\n"
           "class Tiers",
           (BND + "test_enforcement_covers_begins_and_ends_the_day_suspended_or_rescinded",)),
    Mutant("6l", "projections/state.py", "Allocation.in_force_on (license's first day)",
           "return self.valid_from <= day and (end is None or day < end)",
           "return self.valid_from < day and (end is None or day < end)",
           (BND + "test_shipments_on_a_licenses_first_and_last_day_deplete_it",)),
    Mutant("6m", "projections/state.py", "Allocation.end_day (license's last day)",
           "ends = [] if self.valid_to is None else [self.valid_to + dt.timedelta(days=1)]",
           "ends = [] if self.valid_to is None else [self.valid_to]",
           (BND + "test_shipments_on_a_licenses_first_and_last_day_deplete_it",)),
    Mutant("6n", "projections/veu.py", "veu_status valid_on_as_of (VEU first day)",
           "valid_now = (veu.valid_from <= as_of", "valid_now = (veu.valid_from < as_of",
           (BND + "test_veu_status_is_valid_on_its_first_and_last_day_and_until_the_revocation",)),
    Mutant("6o", "projections/veu.py", "veu_status valid_on_as_of (VEU last day)",
           "(version.valid_to is None or as_of <= version.valid_to)",
           "(version.valid_to is None or as_of < version.valid_to)",
           (BND + "test_veu_status_is_valid_on_its_first_and_last_day_and_until_the_revocation",)),
    Mutant("6t", "projections/veu.py", "veu_status valid_on_as_of (last day before revocation)",
           "(veu.revoked_on is None or as_of < veu.revoked_on))",
           "(veu.revoked_on is None or as_of <= veu.revoked_on))",
           (BND + "test_veu_status_is_valid_on_its_first_and_last_day_and_until_the_revocation",)),
    Mutant("6p", "projections/replay_columnar.py", "license_valid (columnar, first day)",
           "& (day >= t[:, 2]) & (day <= t[:, 3])", "& (day > t[:, 2]) & (day <= t[:, 3])", (ENGINES,)),
    Mutant("6q", "projections/replay_columnar.py", "license_valid (columnar, last day)",
           "& (day >= t[:, 2]) & (day <= t[:, 3])", "& (day >= t[:, 2]) & (day < t[:, 3])", (ENGINES,)),
    Mutant("6r", "projections/replay_columnar.py", "veu_valid (columnar, first day)",
           "(day[rows] >= days_since_epoch(v.valid_from))",
           "(day[rows] > days_since_epoch(v.valid_from))", (ENGINES,)),
    Mutant("6s", "projections/replay_columnar.py", "veu_valid (columnar, last day)",
           "& (day[rows] <= end) & (day[rows] < revoked))",
           "& (day[rows] < end) & (day[rows] < revoked))", (ENGINES,)),
)


def pytest(tests: tuple[str, ...]) -> int:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           "-p", "no:randomly", *tests], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


#: the text of each file as it was before its mutant was applied
_ORIGINAL: dict[str, str] = {}


def apply(m: Mutant) -> None:
    path = ROOT / m.path
    text = path.read_text()
    if text.count(m.old) != 1:
        raise SystemExit(f"{m.id}: {m.old!r} occurs {text.count(m.old)} times in {m.path}")
    _ORIGINAL[m.path] = text
    path.write_text(text.replace(m.old, m.new))


def restore(m: Mutant) -> None:
    """Write the file back as it was (edits not yet committed included)."""
    (ROOT / m.path).write_text(_ORIGINAL.pop(m.path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--probe", nargs="+", metavar="TEST",
                        help="apply each chosen mutant and list which of these tests fail")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.ids or m.id in args.ids]
    if args.list:
        for m in chosen:
            print(f"| {m.id} | `{m.path}`: {m.where} | {', '.join(m.tests)} |")
        return 0
    if args.probe:
        for m in chosen:
            apply(m)
            try:
                out = subprocess.run(
                    [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                     "-rf", *args.probe], cwd=ROOT, capture_output=True, text=True,
                    env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}).stdout
            finally:
                restore(m)
            failed = [line.split()[1] for line in out.splitlines()
                      if line.startswith("FAILED")]
            print(f"{m.id}: {len(failed)} fail: {' '.join(failed)}", flush=True)
        return 0
    bad = 0
    for m in chosen:
        if not m.tests:
            print(f"{m.id}: no test named")
            bad += 1
            continue
        apply(m)
        try:
            each = {t: pytest((t,)) for t in m.tests}
        finally:
            restore(m)
        # exit 1: tests failed; 0: all passed; anything else is no verdict
        survived = [f"{t} (exit {rc})" for t, rc in each.items() if rc != 1]
        print(f"{m.id} {m.where}: " + ("killed by every named test" if not survived
                                       else f"NOT KILLED by {', '.join(survived)}"), flush=True)
        bad += bool(survived)
    named = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
    rc = pytest(named) if named else 0
    print("real code: " + ("every named test passes" if rc == 0 else f"pytest exit {rc}"))
    return 1 if bad or rc else 0


if __name__ == "__main__":
    raise SystemExit(main())
