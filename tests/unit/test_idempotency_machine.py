"""A hypothesis state machine of the deciders (issue 10): any interleaving of
record / correct / void / grant / adjust / revoke / amend commands, each applied
1-3 times in any later order, leaves the same events as applying each once.

Two in-memory ledgers (``tests.builders.Scenario``, which decides exactly as the
application does, with the explicit keys of ``command_id`` lines) run side by side:
``real`` gets every command and every repeat, ``once`` only each command's first
application. After every step their events are identical and a repeat appended
nothing. Only commands that were applied are repeated: a command refused at first
(say, a correction before its shipment was recorded) is not a repeat when sent again
later, it is a new attempt that may now be valid."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger.errors import LedgerError
from tests.builders import Scenario

SHIPMENTS = ("S1", "S2")
DATES = ("2025-01-10", "2025-02-10", "2025-03-10", "2025-04-10")
REASONS = ("invoice", "recount", "audit")


command_ids = st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"]))


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from([
        "record", "correct", "correct", "void", "grant", "adjust", "adjust",
        "revoke_allocation", "grant_veu", "amend", "amend", "revoke_veu"]))
    ref = draw(st.sampled_from(SHIPMENTS))
    cid = draw(command_ids)
    extra = {} if cid is None else {"command_id": cid}
    if kind == "record":
        return dict(type="shipment.recorded", exporter_id="acme", shipment_ref=ref,
                    ship_date=draw(st.sampled_from(DATES)), destination="MX",
                    consignee_id="c1", product_id="nvidia-h100-sxm",
                    quantity=draw(st.sampled_from([64, 72])),
                    authorization={"kind": "none"}, **extra)
    if kind == "correct":
        return dict(type="shipment.corrected", exporter_id="acme", shipment_ref=ref,
                    quantity=draw(st.sampled_from([64, 72, 80])),
                    reason=draw(st.sampled_from(REASONS)), **extra)
    if kind == "void":
        return dict(type="shipment.voided", exporter_id="acme", shipment_ref=ref,
                    reason=draw(st.sampled_from(REASONS)), **extra)
    if kind == "grant":
        return dict(type="allocation.granted", allocation_id="L1", country="MX",
                    tpp_amount=100_000_000, valid_from="2025-01-01", holder="acme", **extra)
    if kind == "adjust":
        return dict(type="allocation.adjusted", allocation_id="L1",
                    tpp_amount=draw(st.sampled_from([120_000_000, 150_000_000])),
                    effective_date=draw(st.sampled_from(DATES)),
                    reason=draw(st.sampled_from(REASONS)), **extra)
    if kind == "revoke_allocation":
        return dict(type="allocation.revoked", allocation_id="L1",
                    effective_date=draw(st.sampled_from(DATES)),
                    reason=draw(st.sampled_from(REASONS)), **extra)
    if kind == "grant_veu":
        return dict(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
                    headquarters_country="US", covered_countries=["MX"],
                    valid_from="2025-01-01", **extra)
    if kind == "amend":
        return dict(type="veu.amended", veu_id="V1", effective_date=draw(st.sampled_from(DATES)),
                    covered_countries=draw(st.sampled_from([["MX"], ["MX", "BR"], ["BR"]])),
                    reason=draw(st.sampled_from(REASONS)), **extra)
    return dict(type="veu.revoked", veu_id="V1", effective_date=draw(st.sampled_from(DATES)),
                reason=draw(st.sampled_from(REASONS)), **extra)


def _apply(ledger: Scenario, command: dict[str, Any]) -> list[Any] | None:
    """The events appended, or None when the command was refused."""
    try:
        return ledger.do(**command)
    except LedgerError:
        return None


def _events(ledger: Scenario) -> list[str]:
    return [json.dumps(e.model_dump(mode="json"), sort_keys=True) for _, e in ledger.events]


class RepeatedCommands(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.real = Scenario(rules=False)
        self.once = Scenario(rules=False)
        #: applied commands and how often each may still be repeated (1-3 times in all)
        self.applied: list[tuple[dict[str, Any], int]] = []
        self.sent: set[str] = set()

    @rule(command=commands(), repeats=st.integers(min_value=0, max_value=2))
    def send_new(self, command: dict[str, Any], repeats: int) -> None:
        text = json.dumps(command, sort_keys=True)
        if text in self.sent:
            return  # a repeat is the other rule's business
        self.sent.add(text)
        once = _apply(self.once, command)
        real = _apply(self.real, command)
        assert (once is None) == (real is None)
        if once is not None and repeats:
            self.applied.append((command, repeats))

    @precondition(lambda self: bool(self.applied))
    @rule(data=st.data())
    def repeat_earlier(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(min_value=0, max_value=len(self.applied) - 1))
        command, left = self.applied[index]
        if left == 1:
            self.applied.pop(index)
        else:
            self.applied[index] = (command, left - 1)
        assert self.real.do(**command) == [], f"a repeat appended events: {command}"

    @invariant()
    def same_events_as_applying_each_once(self) -> None:
        assert _events(self.real) == _events(self.once)


RepeatedCommands.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_repeated_commands = RepeatedCommands.TestCase
