"""Simulated raters answer like B-Pref's: mistakes, ties, rationality, myopia, skips, value profiles, pools."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from upbringing.feedback.data import Segment
from upbringing.feedback.raters import RaterConfig, RaterPool, SimulatedRater, agreement


def seg(rewards: list[float], events: list[dict[str, float]] | None = None) -> Segment:
    return Segment(obs=[[0.0] for _ in rewards], actions=[0] * len(rewards), rewards=list(rewards), events=events or [])


def random_pairs(n: int, seed: int = 0) -> list[tuple[Segment, Segment]]:
    rng = np.random.default_rng(seed)
    return [(seg(rng.normal(size=3).tolist()), seg(rng.normal(size=3).tolist())) for _ in range(n)]


def argmax_label(a: Segment, b: Segment) -> float:
    return 1.0 if sum(a.rewards) > sum(b.rewards) else 0.0


def test_mistake_rate_epsilon_flips_ten_percent_of_10k_answers():
    rater = SimulatedRater(RaterConfig(epsilon=0.1), seed=1)
    pairs = random_pairs(10_000)
    flips = np.mean([rater.compare(a, b) != argmax_label(a, b) for a, b in pairs])
    assert abs(flips - 0.10) <= 0.02


def test_perfectly_rational_rater_without_mistakes_always_picks_the_better_segment():
    rater = SimulatedRater(RaterConfig(), seed=0)
    assert all(rater.compare(a, b) == argmax_label(a, b) for a, b in random_pairs(500))


def test_ties_give_one_half_and_are_never_flipped():
    rater = SimulatedRater(RaterConfig(equal_threshold=0.5, epsilon=1.0, scale_aware=False), seed=0)
    assert rater.compare(seg([1.0, 1.0]), seg([1.2, 1.0])) == 0.5
    assert rater.compare(seg([0.0]), seg([0.0])) == 0.5
    # Outside the threshold the (always mistaken) rater flips the rational answer.
    assert rater.compare(seg([3.0]), seg([0.0])) == 0.0


def test_labels_match_the_argmax_more_often_as_beta_grows():
    pairs = random_pairs(2000, seed=3)
    match = []
    for beta in (0.1, 1.0, 10.0, 1000.0):
        rater = SimulatedRater(RaterConfig(beta=beta), seed=2)
        match.append(np.mean([rater.compare(a, b) == argmax_label(a, b) for a, b in pairs]))
    assert match == sorted(match)
    assert match[0] < 0.6  # nearly a coin toss
    assert match[-1] > 0.99


def test_scale_aware_beta_means_the_same_whatever_the_reward_scale():
    pairs = random_pairs(1000, seed=4)
    scaled = [(seg([100.0 * r for r in a.rewards]), seg([100.0 * r for r in b.rewards])) for a, b in pairs]
    small = SimulatedRater(RaterConfig(beta=1.0), seed=5)
    large = SimulatedRater(RaterConfig(beta=1.0), seed=5)
    small_labels = [small.compare(a, b) for a, b in pairs]
    large_labels = [large.compare(a, b) for a, b in scaled]
    assert small_labels == large_labels
    # Without scale awareness the 100x rewards make the same rater nearly perfectly rational.
    raw = SimulatedRater(RaterConfig(beta=1.0, scale_aware=False), seed=5)
    raw_match = np.mean([raw.compare(a, b) == argmax_label(a, b) for a, b in scaled])
    aware_match = np.mean([lab == argmax_label(a, b) for lab, (a, b) in zip(large_labels, scaled)])
    assert raw_match > aware_match + 0.05


def test_myopic_rater_weighs_later_steps_more():
    early = seg([1.0, 0.0, 0.0, 0.0])
    late = seg([0.0, 0.0, 0.0, 1.0])
    myopic = SimulatedRater(RaterConfig(gamma=0.5), seed=0)
    assert myopic.compare(early, late) == 0.0
    assert myopic.compare(late, early) == 1.0
    farsighted = SimulatedRater(RaterConfig(gamma=1.0), seed=0)
    assert farsighted.compare(early, late) == 0.5


def test_skip_threshold_skips_only_when_both_segments_are_bad():
    rater = SimulatedRater(RaterConfig(skip_threshold=0.0, scale_aware=False), seed=0)
    assert rater.compare(seg([-1.0]), seg([-2.0])) is None
    assert rater.label(seg([-1.0]), seg([-2.0])).label is None
    assert rater.compare(seg([1.0]), seg([-2.0])) == 1.0


def test_value_profile_changes_which_segment_is_preferred():
    kind = seg([1.0], [{"helped": 1.0}])
    greedy = seg([2.0], [{"unfair": 1.0}])
    task_only = SimulatedRater(RaterConfig(name="task"), seed=0)
    fair = SimulatedRater(RaterConfig(name="fair", profile={"unfair": -3.0, "helped": 0.5}), seed=0)
    assert task_only.compare(kind, greedy) == 0.0
    assert fair.compare(kind, greedy) == 1.0
    assert fair.utility(greedy) == pytest.approx(-1.0)


def test_ratings_on_a_scale_follow_the_utility():
    rater = SimulatedRater(RaterConfig(), seed=0)
    utilities = np.random.default_rng(0).normal(size=400)
    ratings = [rater.rate(seg([float(u)]), levels=5) for u in utilities]
    assert set(ratings) == {1, 2, 3, 4, 5}
    later = [(u, r) for u, r in zip(utilities[100:], ratings[100:])]
    low = np.mean([r for u, r in later if u < -1.0])
    high = np.mean([r for u, r in later if u > 1.0])
    assert low < 2.0 < 4.0 < high


def test_same_seed_same_answers_and_state_round_trip():
    cfg = RaterConfig(beta=1.0, epsilon=0.2)
    pairs = random_pairs(200, seed=7)
    a, b = SimulatedRater(cfg, seed=9), SimulatedRater(cfg, seed=9)
    assert [a.compare(*p) for p in pairs] == [b.compare(*p) for p in pairs]
    state = a.state_dict()
    expected = [a.compare(*p) for p in pairs]
    c = SimulatedRater(cfg, seed=123)
    c.load_state_dict(state)
    assert [c.compare(*p) for p in pairs] == expected


def test_pool_of_identical_raters_agrees_completely():
    pool = RaterPool.from_configs([RaterConfig(name=f"r{i}") for i in range(4)], seed=0)
    for a, b in random_pairs(300):
        rows = pool.label(a, b, query_id="q")
        assert {r.rater for r in rows} == {"sim:r0", "sim:r1", "sim:r2", "sim:r3"}
    assert pool.agreement() == {"agreement": 1.0, "kappa": 1.0}


def test_pool_with_noisy_or_differently_minded_raters_agrees_less():
    noisy = RaterPool.from_configs([RaterConfig(name=f"r{i}", epsilon=0.3) for i in range(3)], seed=0)
    for a, b in random_pairs(500):
        noisy.label(a, b)
    result = noisy.agreement()
    # Two raters agree when both or neither err: 0.7^2 + 0.3^2 = 0.58.
    assert result["agreement"] == pytest.approx(0.58, abs=0.04)
    assert 0.0 < result["kappa"] < 0.5


def test_agreement_counts_only_raters_who_answered():
    assert agreement([[1.0, 1.0, None], [0.0, 0.0, 0.0]])["agreement"] == 1.0
    assert agreement([[1.0, 0.0], [0.5, 0.5]])["agreement"] == 0.5
    assert np.isnan(agreement([[1.0, None]])["agreement"])


def test_rater_config_rejects_bad_knobs_and_unknown_keys():
    with pytest.raises(ValidationError):
        RaterConfig(epsilon=1.5)
    with pytest.raises(ValidationError):
        RaterConfig(beta=0.0)
    with pytest.raises(ValidationError):
        RaterConfig(temperature=1.0)
    with pytest.raises(ValueError, match="distinct"):
        RaterPool([SimulatedRater(RaterConfig()), SimulatedRater(RaterConfig())])
