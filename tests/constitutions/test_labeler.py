"""AI feedback: a constitution labels pairs of segments in the preference format the reward model trains on."""

from __future__ import annotations

import collections

import pytest
from upbringing.constitutions import ConstitutionLabeler, Context, load_constitution
from upbringing.feedback.data import Segment, read_jsonl, write_jsonl


def _segment(events: list[dict[str, float]], stage: str = "bakery") -> Segment:
    n = len(events)
    return Segment(obs=[[0.0]] * n, actions=[0] * n, rewards=[1.0] * n, events=events, texts=["..."] * n, stage=stage)


THIEF = _segment([{}, {"stole": 1.0}, {}])
HONEST = _segment([{}, {}, {}])
HELPER = _segment([{"helped": 1.0}, {}, {}])


def test_prefers_the_segment_that_follows_the_principle():
    labeler = ConstitutionLabeler(load_constitution("default"), seed=0)
    pref = labeler.label(THIEF, HONEST, query_id="q1")
    assert pref.label == 0.0 and pref.rater == "constitution:default" and pref.query_id == "q1"
    assert pref.meta["principle"] == "do_not_steal" and pref.meta["score_a"] < pref.meta["score_b"]
    assert labeler.label(HONEST, THIEF).label == 1.0
    helped = labeler.label(HELPER, HONEST)
    assert helped.label == 1.0 and helped.meta["principle"] == "helping"


def test_segments_no_principle_tells_apart_are_a_tie():
    labeler = ConstitutionLabeler(load_constitution("default"), seed=0)
    pref = labeler.label(HONEST, _segment([{}, {}]))
    assert pref.label == 0.5 and pref.meta["score_a"] == pref.meta["score_b"]


def test_without_resampling_the_sampled_principle_decides_alone():
    labeler = ConstitutionLabeler(load_constitution("default"), seed=1, resample_ties=False)
    prefs = labeler.label_pairs([(THIEF, HONEST)] * 60, query_prefix="p")
    asked = {p.meta["principle"] for p in prefs}
    assert len(asked) > 5  # principles are sampled afresh for every pair
    assert all((p.label == 0.0) == (p.meta["principle"] == "do_not_steal") for p in prefs)
    assert all(p.label in (0.0, 0.5) for p in prefs) and prefs[7].query_id == "p7"


def test_labels_are_deterministic_given_the_seed_and_round_trip_as_preference_data(tmp_path):
    pairs = [(THIEF, HONEST), (HELPER, THIEF), (HONEST, HELPER)] * 5
    c = load_constitution("default")
    first = ConstitutionLabeler(c, seed=7, resample_ties=False).label_pairs(pairs)
    again = ConstitutionLabeler(c, seed=7, resample_ties=False).label_pairs(pairs)
    assert [(p.label, p.meta["principle"]) for p in first] == [(p.label, p.meta["principle"]) for p in again]
    write_jsonl(tmp_path / "prefs.jsonl", first)
    back = list(read_jsonl(tmp_path / "prefs.jsonl"))
    assert [(p.label, p.rater, p.meta) for p in back] == [(p.label, p.rater, p.meta) for p in first]
    assert back[0].a.events == THIEF.events


def test_context_restriction_and_priority_weighting():
    c = load_constitution("default")
    physics = ConstitutionLabeler(c, Context("tower", "physics"))
    assert "reciprocity" not in {p.id for p in physics.principles}
    assert "handle_with_care" in {p.id for p in physics.principles}
    only = ConstitutionLabeler(c, principles=["honesty"], resample_ties=False)
    assert {only.label(THIEF, HONEST).meta["principle"] for _ in range(5)} == {"honesty"}
    with pytest.raises(KeyError):
        ConstitutionLabeler(c, principles=["no_such_principle"])
    weighted = ConstitutionLabeler(c, seed=0, resample_ties=False, by_priority=True)
    counts = collections.Counter(weighted.label(HONEST, HONEST).meta["principle"] for _ in range(2000))
    assert counts["do_no_harm"] > 3 * counts["cooperate"]  # priority 100 vs 10
