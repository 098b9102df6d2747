"""Rule lifecycle: in force vs on the books, retroactive revisions, timeline, diff."""

from __future__ import annotations

import datetime as dt
import itertools

from tests.unit.replay_builders import StateBuilder

from ledger.rulebook import RuleBook, bundled_rulebook, bundled_rulebooks, in_force, on_the_books
from projections.positions import country_position
from projections.rules import diff, timeline

D = dt.date


def retro(begins: dt.date, cap: int = 500_000_000, rule_id: str = "retro-test") -> RuleBook:
    """The Diffusion rule with another cap, enforced from ``begins`` and superseding the
    non-enforcement: a retroactive revision when recorded after ``begins``."""
    base = bundled_rulebook("ai-diffusion-2025")
    caps = base.caps.model_copy(update={"tier2": base.caps.tier2.model_copy(  # type: ignore[union-attr]
        update={"tpp": cap})})
    return base.model_copy(update={
        "id": rule_id, "published": D(2026, 6, 1), "effective": begins,
        "enforcement": base.enforcement.model_copy(update={"begins": begins,
                                                           "suspended": None}),
        "supersedes": ["diffusion-nonenforcement-2025"], "caps": caps})


def test_retroactive_revision_beginning_before_the_one_it_supersedes_wins() -> None:
    # begins 2025-05-01, before the non-enforcement's 2025-05-13: latest-begin alone
    # would keep the non-enforcement from 05-13; "supersedes" must win
    books = [*bundled_rulebooks(), retro(D(2025, 5, 1))]
    assert in_force(books, D(2025, 5, 5)).id == "retro-test"  # type: ignore[union-attr]
    assert in_force(books, D(2025, 6, 30)).id == "retro-test"  # type: ignore[union-attr]
    # a later revision that does not supersede it still wins by its later begin
    assert in_force(books, D(2026, 2, 1)).id == "h200-china-2026"  # type: ignore[union-attr]
    assert in_force(books, D(2025, 4, 20)).id == "h20-license-2025"  # type: ignore[union-attr]


def test_same_begin_ties_go_to_the_later_recorded() -> None:
    a = retro(D(2025, 5, 13), rule_id="retro-a")
    b = retro(D(2025, 5, 13), cap=1, rule_id="retro-b")
    assert in_force([*bundled_rulebooks(), a, b], D(2025, 6, 1)).id == "retro-b"  # type: ignore[union-attr]
    assert in_force([*bundled_rulebooks(), b, a], D(2025, 6, 1)).id == "retro-a"  # type: ignore[union-attr]


def test_on_the_books_keeps_the_suspended_diffusion_rule() -> None:
    books = bundled_rulebooks()

    def layers(day: dt.date) -> list[str]:
        found = on_the_books(books, day)
        return [] if found is None else [i.id for i in found.instruments]

    assert layers(D(2025, 3, 1)) == ["oct-2023-rules", "ai-diffusion-2025"]
    assert layers(D(2025, 6, 30)) == ["oct-2023-rules", "ai-diffusion-2025", "h20-notice-2025",
                                      "diffusion-nonenforcement-2025"]
    assert in_force(books, D(2025, 6, 30)).id == "diffusion-nonenforcement-2025"  # type: ignore[union-attr]
    assert layers(D(2024, 1, 1)) == ["oct-2023-rules"]
    # rescinding the Diffusion instrument takes it off the books from that day
    diffusion = bundled_rulebook("ai-diffusion-2025")
    inst = next(i for i in diffusion.instruments if i.id == "ai-diffusion-2025")
    gone = inst.model_copy(update={"lifecycle": inst.lifecycle.model_copy(
        update={"rescinded": D(2026, 3, 1)})})
    rescinded = diffusion.model_copy(update={"instruments": [
        i if i.id != "ai-diffusion-2025" else gone for i in diffusion.instruments]})
    books2 = [*books, rescinded]  # recorded last: its copy of the instrument wins
    after = on_the_books(books2, D(2026, 4, 1))
    assert after is not None and "ai-diffusion-2025" not in [i.id for i in after.instruments]
    assert after.cap_for("MX") is None


def test_retroactive_revision_changes_past_positions_known_at_does_not() -> None:
    b = StateBuilder()
    b.ship("e", "s1", D(2025, 6, 1), "MX", 600_000_000)
    before = b.position
    b.rule(retro(D(2025, 5, 1)))
    from projections.state import fold_all  # noqa: F401 - the same fold load_state uses
    day = D(2025, 6, 30)
    now = country_position(b.state, "MX", day, in_force(b.state.rule_books(), day))
    assert (now.rule, now.status, now.remaining_tpp) == ("retro-test", "over-cap",
                                                         -100_000_000)
    # as known before the revision was recorded: rebuild the state up to that position
    old = StateBuilder()
    old.ship("e", "s1", D(2025, 6, 1), "MX", 600_000_000)
    assert old.position == before
    then = country_position(old.state, "MX", day, in_force(old.state.rule_books(), day))
    assert (then.rule, then.status) == ("diffusion-nonenforcement-2025", "no-cap")


def test_timeline_lanes() -> None:
    t = timeline(list(bundled_rulebooks()), end=D(2026, 12, 31))
    enforced = [(p["rule"], p["from"]) for p in t["lanes"]["enforced"]]
    assert enforced == [("baseline-2023", D(2023, 11, 17)),
                        ("h20-license-2025", D(2025, 4, 9)),
                        ("diffusion-nonenforcement-2025", D(2025, 5, 13)),
                        ("h200-china-2026", D(2026, 1, 15))]
    books = t["lanes"]["on-the-books"]
    assert books[1] == {"rule": "on-the-books-2025-01-13", "from": D(2025, 1, 13),
                        "to": D(2025, 4, 8),
                        "instruments": ["oct-2023-rules", "ai-diffusion-2025"]}
    # the Diffusion rule stays on the books throughout, the others layer beside it
    assert all("ai-diffusion-2025" in p["instruments"] for p in books[1:])
    assert books[-1]["instruments"][-1] == "h200-china-2026" and books[-1]["open_ended"]
    lanes = {i["instrument"]: i for i in t["instruments"]}
    assert lanes["ai-diffusion-2025"]["enforced"] is None
    assert lanes["ai-diffusion-2025"]["on_the_books"]["open_ended"]
    assert [(c["group"], c["date"], c["remove"]) for c in t["group_changes"]] == [
        ("d5", D(2026, 2, 3), ["KH"])]
    # periods tile the range without gaps
    for lane in t["lanes"].values():
        for a, b in itertools.pairwise(lane):
            assert b["from"] == a["to"] + dt.timedelta(days=1)


def test_diff_diffusion_against_baseline() -> None:
    d = diff(bundled_rulebook("baseline-2023"), bundled_rulebook("ai-diffusion-2025"))
    moves = {m["country"]: (m["from"], m["to"]) for m in d["tier_moves"]}
    assert moves["MX"] == (None, 2) and moves["CN"] == (None, 3) and moves["FR"] == (None, 1)
    assert d["caps"]["tier2_tpp"] == {"from": None, "to": 790_000_000}
    assert d["caps"]["tier3_tpp"] == {"from": None, "to": 0}
    assert d["exceptions"]["lpp_limit_tpp_per_consignee_year"]["to"] == 26_900_000
    assert d["veu"]["universal_max_share_single_non_tier1"] == {"from": None, "to": "0.07"}
    assert [c["tpp"] for c in d["veu"]["national_caps"]["to"]] == [
        100_000 * 15_832, 270_000 * 15_832, 320_000 * 15_832]
    same = diff(bundled_rulebook("baseline-2023"), bundled_rulebook("baseline-2023"))
    assert same == {"from": "baseline-2023", "to": "baseline-2023"}


def test_diff_license_required_and_product_rules() -> None:
    d = diff(bundled_rulebook("baseline-2023"), bundled_rulebook("h20-license-2025"))
    assert d["product_rules"]["added"] and not d["product_rules"]["removed"]
    assert "nvidia-h20" in d["product_rules"]["added"][0]
