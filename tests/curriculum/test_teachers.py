"""Promotion rules and teachers: mastery gating, budgets, spaced review, demotion, learning progress, saved state."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter
from upbringing.curriculum.promotion import ConfidentAtLeast, MeanAtLeast, PromotionRule, Verdict, wilson_lower_bound
from upbringing.curriculum.teachers import (
    DirectTeacher,
    LearningProgressTeacher,
    ReviewSettings,
    SequentialTeacher,
    Task,
    UniformTeacher,
)

YES = Verdict(True, {})
NO = Verdict(False, {})
NO_REVIEW = ReviewSettings(floor=0.0, boost=0.0)


def test_mean_rule_needs_min_episodes_and_uses_the_window():
    rule = MeanAtLeast(threshold=0.8, window=10, min_episodes=10)
    assert not rule.judge([1.0] * 9).mastered  # too few episodes, however good
    assert rule.judge([1.0] * 10).mastered
    assert not rule.judge([1.0] * 10 + [0.0] * 3).mastered  # last 10: 7/10
    verdict = rule.judge([0.0] * 5 + [1.0] * 10)
    assert verdict.mastered and verdict.evidence["mean"] == 1.0 and verdict.evidence["episodes"] == 10


def test_mean_rule_validates_its_fields():
    with pytest.raises(ValueError):
        MeanAtLeast(threshold=0.5, window=5, min_episodes=6)
    MeanAtLeast(metric="return", threshold=40.0)  # returns may exceed 1


def test_wilson_gate_refuses_nine_of_ten_at_a_threshold_of_point_nine():
    rule = ConfidentAtLeast(threshold=0.9, min_episodes=20, window=60)
    verdict = rule.judge([1.0] * 9 + [0.0])
    assert not verdict.mastered and verdict.evidence["episodes"] == 10
    assert verdict.evidence["lower_bound"] == pytest.approx(0.5958, abs=1e-3)  # Wilson 95%, by hand
    assert not rule.judge([1.0] * 18 + [0.0] * 2).mastered  # 90% observed, bound ~0.70
    assert rule.judge([1.0] * 60).mastered  # bound ~0.94
    assert not rule.judge([1.0] * 19).mastered  # the count is short however perfect


def test_wilson_bound_matches_the_formula_and_is_monotone():
    z = 1.959963984540054
    n, k = 50, 40
    p = k / n
    expected = (p + z * z / (2 * n) - z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    assert wilson_lower_bound(k, n, 0.95) == pytest.approx(expected)
    assert wilson_lower_bound(40, 50, 0.95) < wilson_lower_bound(80, 100, 0.95) < 0.8


def test_t_bound_gate_on_returns():
    rule = ConfidentAtLeast(metric="return", threshold=5.0, min_episodes=10, window=40)
    assert rule.judge([6.0, 6.1, 5.9, 6.0, 6.05, 5.95, 6.0, 6.0, 6.1, 5.9]).mastered
    noisy = [9.0, 1.0] * 5  # mean 5.0 but the bound is far below
    verdict = rule.judge(noisy)
    assert not verdict.mastered and verdict.evidence["rule"] == "t" and verdict.evidence["lower_bound"] < 3


def test_promotion_rules_are_chosen_by_kind_with_mean_the_default():
    adapter = TypeAdapter(PromotionRule)
    assert isinstance(adapter.validate_python({"threshold": 0.9}), MeanAtLeast)
    assert isinstance(adapter.validate_python({"kind": "confident", "threshold": 0.9}), ConfidentAtLeast)
    with pytest.raises(ValueError):
        adapter.validate_python({"kind": "vibes", "threshold": 0.9})


def test_sequential_teacher_climbs_levels_then_stages():
    t = SequentialTeacher(levels=[2, 1], budgets=[100, 100], review=NO_REVIEW, seed=0)
    assert t.next_task() == Task(0, 0)
    t.record_training(Task(0, 0), 10)
    assert t.record_evaluation(Task(0, 0), NO, 0.3) is None
    assert t.record_evaluation(Task(0, 0), YES, 0.9) == "level_up"
    assert t.next_task() == Task(0, 1)
    t.record_training(Task(0, 1), 10)
    assert t.record_evaluation(Task(0, 1), YES, 0.95) == "promotion"
    assert t.progress[0].mastered and t.progress[0].steps_to_mastery == 20
    assert t.next_task() == Task(1, 0)
    t.record_training(Task(1, 0), 100)
    assert t.record_evaluation(Task(1, 0), NO, 0.1) == "not_mastered"
    assert t.done and t.next_task() is None
    assert not t.progress[1].mastered and t.progress[1].steps_to_mastery is None


def test_review_replays_mastered_stages_at_the_floor_rate_without_spending_budget():
    t = SequentialTeacher(levels=[1, 1], budgets=[10**9, 10**9], review=ReviewSettings(floor=0.25), seed=1)
    t.record_evaluation(Task(0, 0), YES, 1.0)
    tasks = [t.next_task() for _ in range(4000)]
    reviews = [x for x in tasks if x.review]
    assert all(x == Task(0, 0, review=True) for x in reviews)
    assert abs(len(reviews) / len(tasks) - 0.25) < 0.03
    t.record_training(Task(0, 0, review=True), 500)
    assert t.progress[0].steps == 0


def test_forgetting_raises_review_and_then_demotes_until_remastered():
    review = ReviewSettings(floor=0.1, boost=2.0, demote_below=0.5)
    t = SequentialTeacher(levels=[1, 1], budgets=[10**6, 10**6], review=review, seed=3)
    t.record_evaluation(Task(0, 0), YES, 0.95)  # stage 0 mastered at 0.95
    rates = []
    for retention in (0.95, 0.85, 0.75, 0.6):  # a forgetting curve, measured after review chunks
        assert t.record_review(0, retention) is None
        rates.append(t.review_probability()[0])
    assert rates == sorted(rates) and rates[0] == pytest.approx(0.1) and rates[-1] > 0.6
    assert t.record_review(0, 0.4) == "demotion"
    assert t.demoted == [0] and t.progress[0].demotions == 1
    assert all(not task.review and task.stage == 0 for task in (t.next_task() for _ in range(50)))
    t.record_training(Task(0, 0), 100)
    assert t.record_evaluation(Task(0, 0), YES, 0.9) == "remastered"
    assert not t.demoted and t.next_task().stage in (0, 1)


def test_relearning_a_demoted_stage_is_bounded_by_half_its_budget():
    t = SequentialTeacher(levels=[1, 1], budgets=[200, 200], review=ReviewSettings(demote_below=0.5), seed=0)
    t.record_evaluation(Task(0, 0), YES, 0.9)
    assert t.record_review(0, 0.1) == "demotion"
    t.record_training(Task(0, 0), 100)
    assert t.record_evaluation(Task(0, 0), NO, 0.2) == "not_remastered"
    assert not t.demoted and t.next_task() in (Task(1, 0), Task(0, 0, review=True))


def test_direct_teacher_trains_only_the_last_stage_hardest_level_with_the_whole_budget():
    t = DirectTeacher(levels=[2, 3], budgets=[100, 50], review=ReviewSettings(floor=0.5), seed=0)
    assert t.progress[0].skipped and t.next_task() == Task(1, 2)
    assert t.budgets[1] == 150
    assert all(t.next_task() == Task(1, 2) for _ in range(100))  # nothing mastered to review


def test_uniform_teacher_samples_unfinished_stages_evenly():
    t = UniformTeacher(levels=[1, 1, 1], budgets=[10**9] * 3, review=NO_REVIEW, seed=0)
    counts = np.bincount([t.next_task().stage for _ in range(3000)], minlength=3)
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.04)
    t.record_evaluation(Task(1, 0), YES, 1.0)
    assert 1 not in {t.next_task().stage for _ in range(300)}


def test_learning_progress_teacher_favours_the_arm_that_is_improving():
    """A toy three-arm student: arm 0 is flat, arm 1 improves steadily, arm 2 is flat at a high score."""
    t = LearningProgressTeacher(levels=[1, 1, 1], budgets=[10**9] * 3, review=NO_REVIEW, seed=0)
    skill = [0.2, 0.0, 0.8]
    picks = []
    for _ in range(400):
        task = t.next_task()
        picks.append(task.stage)
        if task.stage == 1:
            skill[1] = min(1.0, skill[1] + 0.004)
        t.observe(task.stage, skill[task.stage])
    late = np.bincount(picks[100:], minlength=3) / len(picks[100:])
    assert late[1] > 0.6 and late[1] > 3 * max(late[0], late[2])


def test_learning_progress_brings_back_a_stage_being_forgotten():
    t = LearningProgressTeacher(levels=[1, 1], budgets=[10**9, 10**9], review=NO_REVIEW, seed=0)
    t.record_evaluation(Task(0, 0), YES, 1.0)  # stage 0 mastered
    for _ in range(30):  # both stable
        t.observe(0, 1.0)
        t.observe(1, 0.3)
    score = 1.0
    for _ in range(10):  # stage 0 is being forgotten
        score -= 0.05
        t.observe(0, score)
    tasks = [t.next_task() for _ in range(500)]
    share = sum(task.stage == 0 for task in tasks) / len(tasks)
    assert share > 0.8 and all(task.review for task in tasks if task.stage == 0)


@pytest.mark.parametrize("cls", [SequentialTeacher, LearningProgressTeacher, UniformTeacher])
def test_teacher_state_round_trip_gives_the_same_next_100_tasks(cls):
    review = ReviewSettings(floor=0.5, boost=1.0, demote_below=0.3)
    a = cls(levels=[1, 2, 1], budgets=[10**9] * 3, review=review, seed=5)
    a.record_evaluation(Task(0, 0), YES, 0.9)
    a.record_review(0, 0.7)
    for i in range(17):
        task = a.next_task()
        a.observe(task.stage, 0.1 * (i % 5))
    b = cls(levels=[1, 2, 1], budgets=[10**9] * 3, review=review, seed=99)
    b.load_state_dict(a.state_dict())
    assert [a.next_task() for _ in range(100)] == [b.next_task() for _ in range(100)]


def test_loading_another_teachers_state_is_refused():
    a = SequentialTeacher(levels=[1, 1], budgets=[10, 10], review=NO_REVIEW, seed=0)
    b = DirectTeacher(levels=[1, 1], budgets=[10, 10], review=NO_REVIEW, seed=0)
    with pytest.raises(ValueError, match="teacher"):
        b.load_state_dict(a.state_dict())
