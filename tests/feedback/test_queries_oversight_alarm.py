"""Query budgets and selection, hierarchical oversight, and the over-optimisation alarm."""

from __future__ import annotations

import numpy as np
import pytest
from upbringing.feedback.alarm import overoptimisation_alarm, trend
from upbringing.feedback.data import Preference, Segment
from upbringing.feedback.oversight import HierarchicalOversight
from upbringing.feedback.queries import queries_for_chunk, select_pairs
from upbringing.feedback.raters import RaterConfig, RaterPool


def seg(reward: float) -> Segment:
    return Segment(obs=[[reward]], actions=[0], rewards=[reward])


def test_constant_schedule_spends_a_fixed_share_and_never_exceeds_the_budget():
    used, per_chunk = 0, []
    for _ in range(6):
        n = queries_for_chunk(100, used, "constant", 0.3)
        per_chunk.append(n)
        used += n
    assert per_chunk == [30, 30, 30, 10, 0, 0]


def test_decay_schedule_front_loads_the_budget():
    used, per_chunk = 0, []
    for _ in range(4):
        n = queries_for_chunk(100, used, "decay", 0.5)
        per_chunk.append(n)
        used += n
    assert per_chunk == [50, 25, 13, 6]
    with pytest.raises(ValueError, match="schedule"):
        queries_for_chunk(100, 0, "weekly", 0.5)  # type: ignore[arg-type]  # the bad value under test


def test_uniform_selection_draws_distinct_segments_deterministically():
    a = select_pairs(10, 50, "uniform", np.random.default_rng(0))
    b = select_pairs(10, 50, "uniform", np.random.default_rng(0))
    assert a.shape == (50, 2) and (a[:, 0] != a[:, 1]).all() and a.max() < 10
    np.testing.assert_array_equal(a, b)
    assert len(select_pairs(1, 5, "uniform", np.random.default_rng(0))) == 0


def test_active_selection_asks_where_the_ensemble_disagrees_most():
    # Members disagree only about pairs that involve segment 3.
    def predict(pairs: np.ndarray) -> np.ndarray:
        involved = (pairs == 3).any(axis=1)
        return np.stack([np.where(involved, 0.1, 0.5), np.where(involved, 0.9, 0.5)])

    chosen = select_pairs(20, 5, "disagreement", np.random.default_rng(1), predict, candidates_per_query=20)
    assert len(chosen) == 5 and (chosen == 3).any(axis=1).all()

    # Entropy prefers pairs the mean prediction is unsure about.
    def unsure_about_7(pairs: np.ndarray) -> np.ndarray:
        return np.where((pairs == 7).any(axis=1), 0.5, 0.99)[None]

    chosen = select_pairs(20, 4, "entropy", np.random.default_rng(1), unsure_about_7, candidates_per_query=20)
    assert (chosen == 7).any(axis=1).all()
    # Without a model yet, active selection falls back to the uniform draw.
    np.testing.assert_array_equal(
        select_pairs(20, 4, "entropy", np.random.default_rng(2)),
        select_pairs(20, 4, "uniform", np.random.default_rng(2)),
    )


def contrary_judge(a: Segment, b: Segment) -> Preference:
    """An AI judge that always prefers the worse segment, so every spot-check disagrees with it."""
    label = 0.0 if sum(a.rewards) > sum(b.rewards) else 1.0
    return Preference(a=a, b=b, label=label, rater="constitution:contrary")


def test_spot_checked_labels_win_and_disagreements_are_logged():
    humans = RaterPool.from_configs([RaterConfig(name="h1"), RaterConfig(name="h2")], seed=0)
    oversight = HierarchicalOversight(contrary_judge, humans, spot_check=0.25, rng=np.random.default_rng(0))
    results = [oversight.label(seg(1.0), seg(0.0), query_id=f"q{i}") for i in range(400)]
    checked = [r for r in results if r.spot_checked]
    assert 60 <= len(checked) <= 140  # about a quarter
    for r in results:
        if r.spot_checked:
            assert [row.rater for row in r.train] == ["sim:h1", "sim:h2"]
            assert all(row.label == 1.0 for row in r.train)
            assert r.disagreed and r.rows[0].meta["overridden"] and r.rows[0].meta["disagreement"]
        else:
            assert [row.rater for row in r.train] == ["constitution:contrary"] and r.train[0].label == 0.0
    m = oversight.stats.metrics()
    assert m["feedback/oversight/judge_labels"] == 400
    assert m["feedback/oversight/spot_checks"] == len(checked)
    assert m["feedback/oversight/disagreement_rate"] == 1.0


def test_agreeing_judge_with_bare_labels_is_never_overridden_in_substance():
    humans = RaterPool.from_configs([RaterConfig(name="h")], seed=0)

    def judge(a: Segment, b: Segment) -> float:
        return 1.0 if sum(a.rewards) > sum(b.rewards) else 0.0

    oversight = HierarchicalOversight(judge, humans, spot_check=1.0, rng=np.random.default_rng(0))
    result = oversight.label(seg(2.0), seg(1.0))
    assert result.rows[0].rater == "judge:ai" and result.disagreed is False
    assert oversight.stats.metrics()["feedback/oversight/disagreement_rate"] == 0.0
    with pytest.raises(ValueError):
        HierarchicalOversight(judge, humans, spot_check=1.5, rng=np.random.default_rng(0))


def test_alarm_when_proxy_rises_while_truth_falls():
    rising, falling, flat = [0.0, 1.0, 2.0, 3.0], [3.0, 2.5, 1.0, 0.5], [1.0, 1.0, 1.0, 1.0]
    assert overoptimisation_alarm(rising, falling)
    assert not overoptimisation_alarm(rising, rising)  # both improve: healthy
    assert not overoptimisation_alarm(falling, falling)
    assert not overoptimisation_alarm(flat, falling)  # truth falls but the proxy does not rise
    assert not overoptimisation_alarm(rising[:1], falling[:1])  # one chunk: no trend yet
    # A fall within the noise of the truth estimates is not an alarm.
    assert not overoptimisation_alarm(rising, [1.0, 0.9, 1.0, 0.8], [0.01] * 4, [0.5] * 4)
    assert overoptimisation_alarm(rising, [1.0, 0.9, 1.0, 0.8], [0.01] * 4, [0.01] * 4)
    assert trend([0.0, 2.0, 4.0]) == (2.0, 0.0)
    with pytest.raises(ValueError):
        overoptimisation_alarm([1.0, 2.0], [1.0])
