"""Mutation testing of the core: run mutmut, then print the score per module.

    .venv/bin/python -m tests.mutation                 # every module of [tool.mutmut]
    .venv/bin/python -m tests.mutation ledger.chain    # one module (or several)
    .venv/bin/python -m tests.mutation --report        # scores of the last run only
    .venv/bin/python -m tests.mutation ledger.decide --only survivors   # re-check those
    .venv/bin/python -m tests.mutation ledger.decide --only unchecked   # a stopped run
    .venv/bin/python -m tests.mutation 'ledger.counting.x_counted__mutmut_*'  # one function

mutmut (configured in ``pyproject.toml``, ``[tool.mutmut]``) mutates the modules listed
in ``only_mutate`` inside a copy of the tree (``mutants/``) and runs each mutant
against the tests that call the mutated function. A mutant is *killed* when a test
fails (or times out); it *survives* when every test passes. Survivors are listed
with ``.venv/bin/mutmut results`` and shown with ``.venv/bin/mutmut show NAME``;
each one is explained in ``tests/MUTATION.md``. Not part of the normal test run:
it takes tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"

#: mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code), grouped
KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", 37: "type check", -11: "segfault", -9: "segfault"}
SURVIVED = {0: "survived", 5: "no tests", 33: "no tests", 35: "suspicious"}


def module_of(path: Path) -> str:
    """``mutants/ledger/chain.py.meta`` -> ``ledger.chain``."""
    rel = path.relative_to(MUTANTS).as_posix().removesuffix(".py.meta")
    return rel.replace("/", ".")


def scores(modules: list[str]) -> dict[str, Counter[str]]:
    """Per module: how many mutants were killed, survived, or not checked."""
    out: dict[str, Counter[str]] = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        module = module_of(meta)
        if modules and module not in modules:
            continue
        counts: Counter[str] = Counter()
        for code in json.loads(meta.read_text())["exit_code_by_key"].values():
            if code in KILLED:
                counts["killed"] += 1
            elif code in SURVIVED:
                counts["survived"] += 1
            else:  # None (not checked yet), skipped, interrupted
                counts["not checked"] += 1
        out[module] = counts
    return out


def mutant_names(modules: list[str], only: str) -> list[str]:
    """The mutants of ``modules`` the last run left ``only`` ("survivors": not killed;
    "unchecked": no verdict, e.g. the mutants of functions changed since the run)."""
    names = []
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        if modules and module_of(meta) not in modules:
            continue
        for key, code in sorted(json.loads(meta.read_text())["exit_code_by_key"].items()):
            if (only == "survivors" and code in SURVIVED) or (only == "unchecked" and code is None):
                names.append(key)
    return names


def print_scores(modules: list[str]) -> bool:
    """Print the table; True if every module reaches 90 % killed."""
    ok = True
    print(f"{'module':28} {'mutants':>8} {'killed':>7} {'survived':>9} {'unchecked':>10} "
          f"{'score':>7}")
    for module, c in scores(modules).items():
        checked = c["killed"] + c["survived"]
        score = 100.0 * c["killed"] / checked if checked else 0.0
        ok &= score >= 90.0 and not c["not checked"]
        print(f"{module:28} {sum(c.values()):>8} {c['killed']:>7} {c['survived']:>9} "
              f"{c['not checked']:>10} {score:>6.1f}%")
    return ok


def _functions(source: str) -> dict[str, list[str]]:
    """Every ``def x...__mutmut_N`` / ``__mutmut_orig`` in a mutated file: name -> lines."""
    out: dict[str, list[str]] = {}
    name, indent = "", 0
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("def ") and "__mutmut_" in stripped.split("(", 1)[0]:
            name, indent = stripped[4:].split("(", 1)[0], len(line) - len(stripped)
            out[name] = []
        elif name and line.strip() and not stripped.startswith(")") \
                and len(line) - len(stripped) <= indent:
            name = ""
        elif name:
            out[name].append(line.strip())
    return out


def survivors(modules: list[str]) -> list[tuple[str, str, str]]:
    """(mutant, status, the changed line) of every mutant that was not killed."""
    rows = []
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        module = module_of(meta)
        if modules and module not in modules:
            continue
        functions = _functions(meta.with_suffix("").read_text())
        for key, code in sorted(json.loads(meta.read_text())["exit_code_by_key"].items()):
            if code in KILLED:
                continue
            status = SURVIVED.get(code, "not checked")
            local = key.removeprefix(module + ".")
            orig = functions.get(local.rsplit("__mutmut_", 1)[0] + "__mutmut_orig", [])
            mutant = functions.get(local, [])
            diff = difflib.ndiff(orig, mutant)
            changed = [line[2:] for line in diff if line.startswith(("- ", "+ "))]
            rows.append((key, status, "  =>  ".join(changed[:2]) or "(no change found)"))
    return rows


#: why a survivor is harmless or not worth a test: (regex on "mutant<TAB>change", reason).
#: The first match wins; a survivor no rule explains is listed as UNEXPLAINED.
WHY: list[tuple[str, str]] = [
    (r"x__record_shipment__mutmut_(48|49|52|98|102)\t",
     "equivalent: the fast path only skips validating again what is already valid; both "
     "paths build the same model (test_construct_validated)"),
    (r"x__record_shipment__mutmut_26\t.*trusted = None",
     "equivalent: without the fast path the same event is built, validated once more"),
    # ledger/counting.py
    (r"x__by_destination__mutmut_\d+\t.*VEU not valid\{_invalid_reason\(kind, None, veu\)",
     "equivalent: in the VEU branch the kind is 'veu', so _invalid_reason reads only the "
     "VEU check"),
    (r"x__by_destination__mutmut_\d+\t.*license not valid\{_invalid_reason\(kind, license, "
     r"None\)",
     "equivalent: in the license branch the kind is 'license', so _invalid_reason reads "
     "only the license check"),
    (r"x__invalid_reason__.*\(kind == \"veu\"\) or True",
     "equivalent: classify gets only the check of the kind the shipment names "
     "(authorization_checks), so for 'none' and 'lpp' the VEU check is None as well"),
    (r"x_veu_check__.*assert valid_from is not None or covered_countries",
     "equivalent: an assertion of the callers' contract (a known VEU has a start and its "
     "countries); it holds on both sides"),
    (r'x_classify__mutmut_\d+\tnote = ""  =>  note = None$',
     "equivalent: the note is only tested for truth; None and '' are both false"),
    # projections/positions.py
    (r"x_position_days__mutmut_\d+\tFalse, None\)  =>  (None|True), None\)",
     "equivalent: explaining only adds contributions to the positions, which the index "
     "never stores (dump_position leaves them out)"),
    (r"xǁ_Foldǁ_license_shipment__mutmut_([6-9]|1[0-6])\t",
     "unreachable: a shipment counts under a license only if the license had started by "
     "its ship date (license_check), so the fold applied its grant first; a guard"),
    (r"x_lpp_excesses__.*by_consignee\.get\(consignee, (None|)\)",
     "equivalent: the consignees asked about are those of LPP shipments, so each has "
     "shipments in by_consignee and the default is never used"),
    (r"x_country_inputs__.*lpp_excesses\(state, rule, lpp_consignees, as_of, (None|)\)",
     "equivalent: lpp_excesses then makes its own Treater; sharing one only saves "
     "classifying the LPP shipments again"),
    (r"x_country_inputs__.*if not r\.voided or r\.fields\.ship_date <= as_of",
     "equivalent: the extra treatments are never read; fold_country and lpp_excesses "
     "leave out voided and later shipments themselves"),
    (r"x_authorization_checks__.*(lic|veu): AuthorizationCheck \| None = \"\"",
     "equivalent: the check of the kind a shipment does not name is never read, and '' "
     "stands for None alike in the memo key"),
    (r"xǁ_Foldǁ_(cap_period|tier)__.*id\(None\)",
     "equivalent: one fold has one cap rule, so the rule's part of the memo key never "
     "tells two apart"),
    (r"xǁ_Foldǁ_count__.*counts=None\)",
     "equivalent: None is falsy like False"),
    (r"xǁ_Foldǁ_count__.*lpp_excess_by_key\.get\(row\.key, (None|1|)\)",
     "equivalent: every LPP shipment the fold counts has its entry (0 within the limit), "
     "so the default is never used"),
    (r"xǁ_Foldǁ_outside_period__.*id\(None\)",
     "equivalent: the revision a shipment is treated under follows from its ship date, "
     "which the memo key holds"),
    (r"x_lpp_excesses__.*Treater\(None, rule\)",
     "equivalent: it treats only LPP shipments, which need no license or VEU check, so "
     "the Treater never reads its state"),
    (r"xǁTreaterǁ__call____.*(t = None|memo\.get\(None\))",
     "equivalent: the memo only saves classifying a shipment alike again; the treatment "
     "is the same"),
    (r"xǁTreaterǁ__call____.*\(kind in \(\"license\", \"veu\"\)\) or True",
     "equivalent: authorization_checks gives (None, None) for 'none' and 'lpp', what the "
     "shortcut gives"),
    (r"xǁ_Foldǁ_change__.*ch\.kind != \"(XXendXX|END)\"",
     "equivalent: an ended allocation's change carries amount 0, so an ended license "
     "commits and holds nothing, marked active or not"),
    (r"xǁ_Foldǁ_license_shipment__.*lic\.amount if (\(lic\.active\) or True else 0|lic\.active else 1)\)",
     "equivalent: an ended license's amount is already 0, and no shipment counts under "
     "it (license_check refuses a license past its end or revocation)"),
    (r"xǁ_Foldǁ_day_of_changes__.*max\(worsened, (key=None|)\)",
     "equivalent: worsened holds (recorded position, change) pairs with distinct "
     "positions, so the tuples compare by position"),
    # projections/position_index.py
    (r"_tx\(commit=(None|True)\)",
     "equivalent: the transaction only reads, so committing it or not changes nothing"),
    (r"x__day_row__.*raise Miss\(None, \[country\], rule_position\)",
     "equivalent: a miss of no known reason is handled like a stale one (its countries "
     "are rebuilt)"),
    (r"x__day_row__.*raise Miss\(UNINDEXED\)  =>  raise Miss\(None\)",
     "unreachable: every built pair has its first day (dt.date.min), so a day row is "
     "always found"),
    (r"x__known_positions__",
     "unreachable: a past known-at is a recorded position (resolve_known_at, _recorded), "
     "so a chain row at or before it always exists"),
    (r"x__known_day_row__.*\(rows\) or True",
     "equivalent: the statement selects from three one-row aggregates, so it always "
     "returns one row"),
    (r"x__positions__mutmut_\d+\traise Miss\(BEHIND\)  =>  raise Miss\(None\)",
     "unreachable: rm_position has its row once the read model's schema exists, and "
     "without the schema the statement fails first"),
    (r"x__positions__.*(rows\[0\]\[1\] or 1|rows\[0\]\[2\] or 1)",
     "equivalent: with nothing recorded or folded there is no revision, so the index "
     "answers nothing either way"),
    (r"x__stamp__.*\(known_at is None\) or True",
     "equivalent: the state position is the last recorded one at or before known_at, "
     "so min(known_at, it) is it"),
    (r"x_timeline__.*\(chosen is None\) and False",
     "equivalent: position_of has no entry for id(None), so None is found either way"),
    (r"xǁMissǁ__init____.*super\(\).__init__\(None\)",
     "equivalent: a Miss is read by its reason attribute; its text is never shown"),
    (r"xǁPositionIndexǁ_retrying__.*range\(21\)",
     "equivalent: a bound on retries that no query reaches"),
    (r"(x_lookup|x_lookup_database|xǁPositionIndexǁposition|xǁPositionIndexǁpositions_all|"
     r"x_lookup_all)__mutmut_\d+\t.*(on_the_books: bool = True|catch_up: bool = False)",
     "equivalent: every caller passes this argument, so its default is never used"),
    (r"x__lookup_database__.*connect_timeout=(6|None)",
     "not worth a test: how long a connection may take to open; no test waits for it"),
    (r"x__lookup_database__.*if not path and not os\.path\.isfile",
     "equivalent: a missing file fails to open read-only, which gives None as well"),
    (r"x__lookup_caught_up__.*if c\.pg:",
     "not testable deterministically: without BEGIN each statement reads its own "
     "snapshot; only a write between two of them (a race) would show it"),
    (r"xǁ_Marksǁmark__.*if day <= self",
     "equivalent: replacing a day with the same day changes nothing"),
    (r"x__(day_row|lookup_all)__.*raise Miss\(None, \[?(country|stale)\]?, rule_position\)"
     r"|x_lookup_all__.*raise Miss\(None, stale, rule_position\)",
     "equivalent: a miss of no known reason is handled like a stale one (its countries "
     "are rebuilt)"),
    (r"\"(RM_QUOTA_[A-Z_]+|RULE_POSITION, COUNTRY, REGIME[^\"]*|KNOWN_TO, POSITION)\"",
     "equivalent: unquoted table and column names are case-insensitive"),
    (r"x__keep_past__.*start is not None (and end is not None or|or end is not None and)",
     "equivalent: start and end are never None here: a pair's first refresh covers every "
     "day, and a refresh rewrites only days on or after a pending mark"),
    (r"x__keep_past__.*start <= end",
     "equivalent: a past row valid over [start, start) is never found by a known-at"),
    (r"x__note_refresh__.*(past >= HISTORY_FACTOR|refreshes >= MAX_REFRESHES)",
     "not worth a test: one row or refresh more or less before a pair's bounded history "
     "restarts; every answer still equals the fold's"),
    (r"x__change_days__.*if day <= dt\.date\.max",
     "equivalent: no rule document names 9999-12-31"),
    (r"x_regimes__.*book\.cap_for\((None, day|country, None)\)",
     "equivalent: under one revision the cap follows the tier, which the regime also "
     "compares"),
    (r"x__lookup_database__.*sqlite3\.connect\(.*\?mode=ro\", (uri=None|uri=False|)\)",
     "equivalent here: this SQLite is built to read 'file:' names as URIs whatever the "
     "flag; the flag keeps it so on other builds"),
    (r"x__lookup_database__.*_Bare\(lite\.cursor\(\), None\)",
     "equivalent: None is falsy like False"),
    (r"x_note_batch__.*\{v\[1\] for v in folder\.veus\}",
     "equivalent: a VEU's grant is also one of the batch's VEU changes (rm_veu_changes "
     "holds grants), which name it"),
    (r"x__positions__.*if head_sql else \"XXXX\"",
     "equivalent: '(…)XXXX' only names the selected column XXXX (an alias)"),
    (r"xǁPositionIndexǁ_retrying__.*RuntimeError\(None\)",
     "not worth a test: the text of an error no query reaches"),
    (r"xǁPositionIndexǁ_lock__.*(\(rows\) or True|if rows else 1)",
     "equivalent: rm_position has its row once the schema exists, so rows is never empty"),
    (r"xǁPositionIndexǁrefresh__.*valid\.get\(pos, None\) != FRESH",
     "equivalent: a pair never built is not FRESH either way"),
    (r"x_regimes__.*(previous: object = None|book\.cap_for\((day|country, )\))",
     "equivalent: the first tuple is never None, and under one revision the cap follows "
     "the tier, which the regime also compares"),
    (r"x__mark_allocations__.*min\(earliest\.get\((alloc_id|None), FRESH\), (valid_from|"
     r"effective|)\)",
     "equivalent in answers: the country is marked from min(valid_from, earliest), and an "
     "allocation changes nothing before its start; the mutant only marks from the start "
     "when a change is dated before it"),
    (r"x__rules_after__mutmut_1\t|x_lookup__.*_rules_after\(c, None\)",
     "not worth a test here: a later revision only makes itself the pick (whose rows at an "
     "earlier known-at do not exist, so the fold answers); only one rescinding an earlier "
     "revision in favour of a third would tell them apart, and none exists"),
    (r"x_lookup__.*if known_at is None and not is_past",
     "equivalent: known at or after the read model's position, the rows valid then are the "
     "live ones, which the known-at path finds as well"),
    (r"x_lookup_all__.*_positions\(c, None, head_sql\)",
     "equivalent: a past known-at ends in the fold either way; the mutant only catches the "
     "read model up first"),
    (r"xǁPositionIndexǁrefresh__.*valid\.get\(pos, \) != FRESH",
     "equivalent: a pair never built is not FRESH either way"),
    (r"xǁ_Foldǁposition__.*if \(cap is not None\) or True",
     "equivalent: a cap period exists only with a tier-2 cap, so without a cap it is None "
     "either way"),
    # projections/replay_columnar.py
    (r"x_classify_row__mutmut_\d+\t(found = memo\.treatments\.get\(key\)  =>  found = (None|"
     r"memo\.treatments\.get\(None\))|tier2 = memo\.tier2\.get\(tier_key\)  =>  tier2 = "
     r"(None|memo\.tier2\.get\(None\)))$",
     "equivalent: a memo; without it the group's treatment (or tier) is worked out again, "
     "the same"),
    (r"xǁChangeRowsǁcitation__mutmut_\d+\t(key = .*lane is not self\.a|text = self\.citations"
     r"\.get\(key\)  =>  text = (None|self\.citations\.get\(None\)))",
     "equivalent: a memo of citation texts; its key still tells the lanes apart, and without "
     "it the same text is looked up again"),
    (r"xǁRowChecksǁfill_details__mutmut_\d+\tcheck = known\.get\(key\)  =>  check = (None|"
     r"known\.get\(None\))$",
     "equivalent: a memo of row checks; without it the same check is worked out again"),
    (r"x_all_checks__mutmut_\d+\t(license|veu) = np\.full\(len\(cols\), -1, dtype=np\.int64\)"
     r"  =>  .*np\.full\(len\(cols\), (\+1|-2), |xǁChecksǁstand_in__mutmut_1\t",
     "equivalent: classify reads the license (VEU) check only of a shipment under a license "
     "(VEU), whose rows get their own code (0 or 1); any other code stands for none"),
    (r"x_lane_days__mutmut_\d+\tfound\.append\(\(-1, -1 - n, True, -1, day\.year\)\)  =>  "
     r"found\.append\(\(-1, (-2 - n, True, -1|-1 - n, False, -1|-1 - n, True, (\+1|-2)), ",
     "equivalent: a day without a revision keeps a key of its own (negative, one per day), "
     "and its rows are 'not counted' (no tier 2, no LPP), so neither its cap-period flag nor "
     "its LPP limit is read"),
    (r"x_lane_days__mutmut_\d+\t.*r \* 1000001 \+ book",
     "equivalent: a revision has far fewer than a million dated periods, so keys stay "
     "distinct; classify_row reads the period back as key - r * 1,000,000 (period + r), the "
     "same for every row of the revision"),
    (r"x__last_change__mutmut_\d+\t.*(np\.where\(None, idx, 0\)|np\.any\(None\)|"
     r"Unsupported\(None\))|x_license_run__mutmut_\d+\tlast = _last_change.*  =>  last = "
     r"_last_change\(is_ship == 0, None\)",
     "unreachable: a shipment counts under a license only if the license had started by its "
     "ship date (license_check), so its grant sorts before it; the guard never fires"),
    (r"x__last_change__mutmut_\d+\t.*(np\.where\(is_change, idx, -2\)|if \(len\(idx\)\) or "
     r"True)",
     "equivalent: -2 is below every run's first index like -1; over no items accumulate "
     "gives no items either way"),
    (r"x_license_valid__mutmut_\d+\ttable = np\.full\(.*, (\+2|-3), dtype",
     "equivalent: a reference that is no license gets one number v in every field, and "
     "valid needs v <= day <= v and day < v, which no day meets"),
    (r"x_license_valid__mutmut_\d+\t.*\.get\(a\.(holder|country), -4\)",
     "equivalent: -4, like -3, is no exporter's or destination's code"),
    (r"x_license_run__mutmut_\d+\t.*kind != \"(XXendXX|END)\"",
     "equivalent: an ended allocation's change carries amount 0, so an ended license holds "
     "nothing, marked active or not"),
    (r"x_license_run__mutmut_\d+\tref_code = .*code\.get\(n, (\+1|-2)\)",
     "equivalent: every license row's reference is in names, so the default is never read"),
    (r"x_license_run__mutmut_\d+\t.*  =>  excess = np\.clip\(shipped_after - held, None, "
     r"shipped\)",
     "equivalent: a negative excess is never used: only a positive one flags a row "
     "(settle_rows)"),
    (r"x_lpp_excess__mutmut_\d+\tidx = idx\[sort_order\(idx, year\[idx\], cols\.consignee"
     r"\[idx\]\)\]  =>  idx = idx\[sort_order\((year\[idx\], cols\.consignee\[idx\]|idx, "
     r"cols\.consignee\[idx\])\)\]",
     "equivalent: the rows are in date order and the sort is stable, so the row order gives "
     "idx's order and the years' with it"),
    (r"x_lpp_excess__mutmut_\d+\t.*np\.clip\(before \+ tpp - limit\[idx\], None, tpp\)",
     "equivalent: a negative excess is never used: only a positive one counts "
     "(settle_rows: lpp > 0)"),
    (r"x_row_at__mutmut_\d+\t(position = int\(cols\.position\[i\]\)  =>  position = None|.*ShipmentRow\((None|cols\.exporters\[int\(cols"
     r"\.exporter\[i\]\)\], (None|str\(None\)))|.*fields_at\(cols, i\), (None, position|"
     r"position, None)\))",
     "equivalent: row_at serves only a VEU row's check, and veu_check reads the row's fields "
     "(authorization, destination, ship date), not its exporter, reference or positions"),
    (r"x_fields_at__mutmut_\d+\t(.*(consignee_id=None|quantity=None)|consignee_id=cols\."
     r"consignees\[int\(cols\.consignee\[i\]\)\],$|.*  =>  product_id=cols\.products\[int\(cols"
     r"\.product\[i\]\)\], tpp_per_unit=)",
     "equivalent: the fields serve only classify, which reads neither the consignee nor the "
     "quantity"),
    (r"x_dense_rank__mutmut_\d+\t.*(- low \+ 2|if width >= DENSE_SPAN|reshape\((None|-2)\))",
     "equivalent: a table one wider marks the same values; at exactly DENSE_SPAN np.unique "
     "ranks the same; the inverse of 1-D values is flat already"),
    (r"x__used__mutmut_\d+\t.*np\.bincount\(rule \+ 1, (minlength=len\(lane\.days\.rules\) "
     r"(\+ 2|- 1)|)\)",
     "equivalent: only revisions with shipments (n > 0) are listed, so the length of the "
     "zero tail changes nothing"),
    (r"x_sort_order__mutmut_\d+\t.*(k\.min\(initial=1\)|k\.max\(initial=1\)|- low \+ 2|\+ low "
     r"\+ 1|\(k \+ low\)|span = 1  =>  span = 2)",
     "equivalent: the keys are non-negative, so low is 0 (k.min(initial=0)); a lower bound "
     "at or below the least key and a width at or above the range keep the packed key "
     "one-to-one and in key order (only where lexsort takes over moves, to the same order)"),
    (r"x_sort_order__mutmut_\d+\t.*if span \* width (> 2\*\*62|>= 2\*\*63|>= 2 \* 62):",
     "equivalent: packed keys below 2**63 still fit int64, and under the bound lexsort gives "
     "the same stable order as the packed sort"),
    (r"x_sort_order__mutmut_\d+\t.*np\.argsort\(packed, (kind=None|kind=\"STABLE\"|)\)",
     "equivalent: the callers' key tuples are distinct (an item's own recorded position or "
     "row index; one event's changes differ in day), so any sort kind gives the same order; "
     "numpy reads 'STABLE' as 'stable'"),
    (r"xǁChangeRowsǁtreatments__mutmut_\d+\tdetail=\(\"\" if not details.*  =>  detail=\(\""
     r"(XXXX\" if not details|\" if \(not details\) and False)",
     "equivalent: details=False is asked only by the JSON encoder, which replaces the detail "
     "with its own"),
    (r"x_replay_columns__mutmut_\d+\tagainst: str = \"in-force\",  =>  against: str = "
     r"\"(XXin-forceXX|IN-FORCE)\"",
     "equivalent: every caller passes against, so the default is never used"),
    (r"x_classify_row__mutmut_\d+\tkey = \(id\(rule\), int\(days\.key\[d\]\) - r \* 1_000_000, .*"
     r"  =>  key = \(id\(rule\), int\(days\.key\[d\]\) (\+ r \* 1_000_000|- r / 1_000_000|- r \* "
     r"1000001), ",
     "equivalent: the memo key's period part changes alike for every row of a revision "
     "(the key holds the revision too), so it tells exactly the same groups apart"),
    (r"x_classify_row__mutmut_7\t",
     "equivalent: a day without a revision is inside its cap period (lane_days), so its "
     "rows are never outside it, tier 2 or not"),
    (r"x_lane_days__mutmut_\d+\t.*  =>  period is None or period\.contains\(day\), (\+1|-2) if "
     r"lpp is None",
     "equivalent: only a revision with an LPP limit puts shipments in the LPP bucket "
     "(classify), so a missing limit is never read"),
    (r"x__used__mutmut_\d+\t.*\] \+= n  =>  .*\] = n$",
     "equivalent: each key is set once: 'none' for index 0 and a lane's revisions have "
     "distinct ids"),
    (r"x_first_breaches__mutmut_\d+\tworsened_run = .*  =>  .*(\+ 2 if len\(f\.run_id\) else 0|"
     r"\+ 1 if len\(f\.run_id\) else 1),",
     "equivalent: the extra slot belongs to no run and is never read"),
    (r"x_fold_order__mutmut_\d+\t.*  =>  (last_of_run = .* if \(len\(day_run\)\) or True|"
     r"return FoldOrder\(.*np\.cumsum\(day_run\) \+ 1)",
     "equivalent: over no items the guard changes nothing (shapes broadcast to none); run "
     "numbers shifted by 2 still tell the runs apart (the worsened table grows with them)"),
    (r"x_fold_order__mutmut_\d+\torder = sort_order\(position, is_row, day, country\)  =>  "
     r"order = sort_order\(is_row, day, country\)|x_license_run__mutmut_\d+\torder = "
     r"sort_order\(pos, is_ship, day, lic\)  =>  order = sort_order\(is_ship, day, lic\)",
     "equivalent: the stream lists changes and rows each in (day, recorded position) order "
     "already (allocation_changes, the columns) and the sort is stable"),
    (r"x_group_codes__mutmut_\d+\t.*(max\(width, 2\)|>= DENSE_SPAN|span = 1  =>  span = 2)",
     "equivalent: it only ranks the key again sooner, which renumbers it without changing "
     "its order or which rows are equal"),
    (r"x_ledgerwide__mutmut_\d+\t.*(country_of\.get\(d, (None|\+1|-2|)\)|if \(len\(cols\)\) "
     r"or True|np\.bincount\(cols\.destination, (minlength=2|)\))",
     "equivalent: every destination in the table has a live shipment, so it is one of the "
     "countries (the default is never read); over no rows the guards change nothing; the "
     "zero tail of bincount adds no destination"),
    (r"x_replay_columns__mutmut_\d+\t.*if \(known_at is None\) or True",
     "equivalent: the state position is the last recorded one at or before known_at, so "
     "min(known_at, it) is it"),
    (r"x_replay_columns__mutmut_\d+\tlane_a = make_lane\(state, rule_id, to, drafts\)  =>  "
     r"lane_a = make_lane\(state, rule_id, (None, drafts|drafts)\)",
     "equivalent: the rule lane names one revision, and make_lane reads the day only for "
     "the timeline lanes (in-force, on-the-books); callers name a revision"),
    (r"x_outside_detail__mutmut_2\t",
     "equivalent: a row outside a cap period has a revision (a day without one is never "
     "outside), so rule is never None here"),
    (r"x_lane_country__mutmut_3\t",
     "equivalent: a cap period exists only with a tier-2 cap, so without a cap cap_standing "
     "gives no-cap either way"),
    (r"x_flag_totals__mutmut_\d+\tcount = np\.bincount\(key, minlength=n \* len\(FLAGS\)\)  =>  "
     r"count = np\.bincount\(key, \)",
     "equivalent: only the non-zero counts are read, so the length of the zero tail "
     "changes nothing"),
    (r"x__differs__mutmut_3\t",
     "equivalent under the fold's rules: between lanes that agree on bucket and flag, a "
     "row's flagged and counted TPP differ together (both its TPP under the cap, both the "
     "excess for LPP and for a license)"),
    (r"x_classify_row__mutmut_35\t",
     "equivalent for these rule books: only a revision with a tier-2 cap period makes it "
     "true (ai-diffusion-2025), and its tiers have no dated group changes, so a "
     "destination's answer is the same in every dated period"),
    (r"x_group_codes__mutmut_11\t",
     "not worth a test: it ranks the key again only later; leaving int64 would need "
     "columns of over a million distinct values each"),
    (r"x_lane_days__mutmut_30\t",
     "not worth a test: revision 0's later dated periods (-1, -2, ...) would then share "
     "keys with days without a revision (-1 - n); a test needs rows alike on such a day "
     "and in a dated tier change of the lane's first revision, which no rule book here has"),
    (r"ensure_ascii=None", "equivalent: None is falsy like False"),
    (r"\.(en|de)code\(\\?\"(UTF-8|ASCII)\\?\"\)|\.(en|de)code\(\)",
     "equivalent: codec names are case-insensitive and utf-8 is the default"),
    (r'encoding="UTF-8"', "equivalent: codec names are case-insensitive"),
    (r"x__flatten__.*ensure_ascii=True|x__flatten__.*sort_keys=True, \)",
     "not worth a test: the lists and rule books exported are ASCII (codes, ids, citations); "
     "the flag only keeps future non-ASCII text readable"),
    (r"x_parse_expect_head__.*rpartition",
     "equivalent: with two colons either the position or the hash is invalid, both refused"),
    (r"(VALUES|ORDER BY|AND position|INSERT INTO|SELECT|LOCK TABLE)[^\t]*=>.*(values|order by|and "
     r"position|insert into|select|lock table|TOPIC|POSITION|ORIGINATOR_ID)",
     "equivalent: SQL keywords and unquoted names are case-insensitive"),
    (r"x_verify_chain__.*rsplit|x_verify_chain__.*split\(':', 1\)",
     "equivalent: a stored topic is 'module:Class', with exactly one colon"),
    (r"x_verify_chain__.*if p >= last_event",
     "equivalent: in that branch p has no event, so it never equals the last event's position"),
    (r'x_verify_chain__.*prev_time: str \| None = ""',
     "equivalent: no recorded time sorts at or before '', so the first row is never flagged"),
    (r"x_write_csv__.*restval|x_write_csv__.*_flatten\(None",
     "equivalent: csv writes None as an empty cell and restval defaults to ''; a None prefix is "
     "falsy like ''"),
    (r"x__decode__.*\(supported: \{'XX, XX'\.join",
     "equivalent while one schema version is supported: a join of one item has no separator"),
    (r'x__describe__.*leaf = loc\[-1\] if loc else "XXXX"',
     "equivalent: without a location the leaf is only compared with field names, and "
     "neither '' nor 'XXXX' is one"),
    (r"x_chain_hash_at__.*read_chain_rows\(ledger, position(, None|, |)\)",
     "equivalent: the first row read is the one at the position either way"),
    (r"x_export_rows__.*if start >= 1",
     "equivalent: from position 1 there is no earlier row, so the genesis hash is used either way"),
    (r"x_export_rows__.*read_chain_rows\(ledger, start, (None|)\)",
     "equivalent: links past the range are read but never used"),
    (r"x_export_rows__.*\(before\) or True",
     "equivalent on an intact chain (rows before start exist); a broken one is audit verify's job"),
    (r"x_export_rows__.*type\(None\)",
     "message wording: the exception's class name in a message; not worth a test"),
    (r"x__uuid_text__",
     "equivalent: both stores return UUID objects and exports hold canonical UUID text"),
    (r"read_text\(encoding=None\)",
     "equivalent here: the locale's encoding is UTF-8 (an explicit codec is kept for portability)"),
    (r"\[:1[67]\]", "message wording: a longer hash prefix in a message; not worth a test"),
    (r'=>  .*"[A-Z][A-Z ]+[A-Z]"\)', "message wording: capitals in a message; not worth a test"),
    (r'=>  .*"XX', "message wording: text around the facts; not worth a test"),
]


#: words that make a string SQL (with a ``?`` placeholder, or SQL keywords)
_SQL = (r"\?|\b(select|insert|delete|update|where|begin|values|order by|group by|on conflict|"
        r"from|limit|union)\b")


def sql_case_only(change: str) -> bool:
    """Whether a change only changes the letter case of SQL text outside its quoted
    literals: SQL keywords and unquoted names are case-insensitive (PostgreSQL folds
    unquoted names to lower case, SQLite compares them without case)."""
    before, _, after = change.partition("  =>  ")
    if before == after or before.lower() != after.lower() or "%s" in before:
        return False  # (a psycopg placeholder is not SQL: %S is no placeholder)
    quoted = r"'[^']*'"
    return (re.search(_SQL, before, re.IGNORECASE) is not None
            and re.findall(quoted, before) == re.findall(quoted, after))


def _without(text: str, pattern: str) -> str:
    return re.sub(r"\s+", "", re.sub(pattern, "", text))


#: a numpy dtype argument (``dtype=np.int64``, ``np.int64``, ``bool``) or what mutmut puts
#: in its place (``None``, nothing)
_DTYPE = r"(dtype=)?(np\.int64|bool|None)(?=\))"


def numpy_dtype_only(key: str, change: str) -> bool:
    """Whether a change of the columnar replay only drops a numpy dtype or makes it None."""
    before, _, after = change.partition("  =>  ")
    return (key.startswith("projections.replay_columnar.") and before != after
            and re.search(r"np\.int64\)|, bool\)", before) is not None
            and _without(before, _DTYPE) == _without(after, _DTYPE))


def zip_strict_only(key: str, change: str) -> bool:
    """Whether a change of the columnar replay only drops ``strict=True`` of a zip or makes
    it False or None."""
    before, _, after = change.partition("  =>  ")
    strict = r"strict=(True|False|None)"
    return (key.startswith("projections.replay_columnar.") and "strict=True" in before
            and before != after
            and _without(before, strict) == _without(after, strict))


def explain(key: str, change: str) -> str:
    if sql_case_only(change):
        return "equivalent: SQL keywords and unquoted names are case-insensitive"
    if numpy_dtype_only(key, change):
        return ("equivalent: numpy infers int64 from Python ints and bool from bools; where "
                "it makes float64 (zeros, ones, astype), the values (codes, days, positions, "
                "0/1, TPP sums below 2**53) stay exact and compare, sort and are stored back "
                "into int64 the same")
    if zip_strict_only(key, change):
        return ("equivalent: the zipped sequences have one item per row by construction; "
                "strict only checks it")
    for pattern, reason in WHY:
        if re.search(pattern, f"{key}\t{change}"):
            return reason
    return "UNEXPLAINED"


def print_markdown(modules: list[str]) -> None:
    """Per module: a table of survivors, each with its one-line reason."""
    by_module: dict[str, list[tuple[str, str, str]]] = {}
    for key, status, change in survivors(modules):
        module = key.split(".x", 1)[0]
        by_module.setdefault(module, []).append((key, status, change))
    for module, rows in by_module.items():
        print(f"\n### {module}\n")
        unchecked = sum(status == "not checked" for _, status, _ in rows)
        if unchecked:
            print(f"({unchecked} mutants without a verdict in mutants/ are left out.)\n")
        print("| mutant | change | why it may live |")
        print("|---|---|---|")
        for key, status, change in rows:
            if status == "not checked":
                continue
            name = key.removeprefix(module + ".").replace("|", "\\|")
            text = change.replace("|", "\\|").replace("`", "'")
            print(f"| `{name}` | `{text[:150]}` | {explain(key, change)} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="dotted module names (default: all)")
    parser.add_argument("--report", action="store_true", help="only print the last scores")
    parser.add_argument("--markdown", action="store_true",
                        help="the survivors with their reasons, as tests/MUTATION.md lists them")
    parser.add_argument("--survivors", action="store_true",
                        help="only list the mutants not killed, with the line each changed")
    parser.add_argument("--max-children", type=int, default=2,
                        help="parallel mutant runs (default 2: the machine's cores)")
    parser.add_argument("--only", choices=("survivors", "unchecked"),
                        help="re-check only the survivors, or the mutants without a verdict")
    args = parser.parse_args(argv)
    if args.markdown:
        print_markdown(args.modules)
        return 0
    if args.survivors:
        for key, status, change in survivors(args.modules):
            print(f"{key}\t{status}\t{change}\t{explain(key, change)}")
        return 0
    if not args.report:
        mutmut = Path(sys.executable).with_name("mutmut")
        # a module, a mutant's name, or a pattern (ledger.counting.x_classify__mutmut_*)
        names = [m if "__mutmut_" in m else f"{m}.*" for m in args.modules]
        args.modules = sorted({m.split(".x", 1)[0] for m in args.modules})
        if args.only:
            names = mutant_names(args.modules, args.only)
            print(f"re-checking {len(names)} {args.only}")
            if not names:
                return 0 if print_scores(args.modules) else 1
        started = time.monotonic()
        run = subprocess.run([str(mutmut), "run", "--max-children", str(args.max_children),
                              *names], cwd=ROOT, check=False)
        print(f"mutmut run took {time.monotonic() - started:.0f} s (exit {run.returncode})")
        if run.returncode not in (0, 1):
            return run.returncode
    return 0 if print_scores(args.modules) else 1


if __name__ == "__main__":
    sys.exit(main())
