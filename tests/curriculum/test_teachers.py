"""Promotion rules and teachers: mastery gating, budgets, review, the direct control, saved state."""

from __future__ import annotations

import pytest

from curriculum.promotion import MeanAtLeast, Verdict
from curriculum.teachers import DirectTeacher, SequentialTeacher, Task

YES = Verdict(True, {})
NO = Verdict(False, {})


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


def test_sequential_teacher_climbs_levels_then_stages():
    t = SequentialTeacher(levels=[2, 1], budgets=[100, 100], review_fraction=0.0, seed=0)
    assert t.next_task() == Task(0, 0)
    t.record_training(Task(0, 0), 10)
    assert t.record_evaluation(Task(0, 0), NO) is None
    assert t.record_evaluation(Task(0, 0), YES) == "level_up"
    assert t.next_task() == Task(0, 1)
    t.record_training(Task(0, 1), 10)
    assert t.record_evaluation(Task(0, 1), YES) == "promotion"
    assert t.progress[0].mastered and t.progress[0].steps_to_mastery == 20
    assert t.next_task() == Task(1, 0)
    t.record_training(Task(1, 0), 100)
    assert t.record_evaluation(Task(1, 0), NO) == "not_mastered"
    assert t.done and t.next_task() is None
    assert not t.progress[1].mastered and t.progress[1].steps_to_mastery is None


def test_review_replays_mastered_stages_at_the_configured_rate_without_spending_budget():
    t = SequentialTeacher(levels=[1, 1], budgets=[10**9, 10**9], review_fraction=0.25, seed=1)
    t.record_evaluation(Task(0, 0), YES)
    tasks = [t.next_task() for _ in range(4000)]
    reviews = [x for x in tasks if x.review]
    assert all(x == Task(0, 0, review=True) for x in reviews)
    assert abs(len(reviews) / len(tasks) - 0.25) < 0.03
    t.record_training(Task(0, 0, review=True), 500)
    assert t.progress[0].steps == 0


def test_direct_teacher_trains_only_the_last_stage_hardest_level_with_the_whole_budget():
    t = DirectTeacher(levels=[2, 3], budgets=[100, 50], review_fraction=0.5, seed=0)
    assert t.progress[0].skipped and t.next_task() == Task(1, 2)
    assert t.budgets[1] == 150
    assert all(t.next_task() == Task(1, 2) for _ in range(100))  # nothing mastered to review


def test_teacher_state_round_trip_gives_the_same_next_tasks():
    a = SequentialTeacher(levels=[1, 1, 1], budgets=[10**9] * 3, review_fraction=0.5, seed=5)
    a.record_evaluation(Task(0, 0), YES)
    a.record_evaluation(Task(1, 0), YES)
    for _ in range(17):
        a.next_task()
    b = SequentialTeacher(levels=[1, 1, 1], budgets=[10**9] * 3, review_fraction=0.5, seed=99)
    b.load_state_dict(a.state_dict())
    assert [a.next_task() for _ in range(100)] == [b.next_task() for _ in range(100)]


def test_loading_another_teachers_state_is_refused():
    a = SequentialTeacher(levels=[1, 1], budgets=[10, 10], review_fraction=0.0, seed=0)
    b = DirectTeacher(levels=[1, 1], budgets=[10, 10], review_fraction=0.0, seed=0)
    with pytest.raises(ValueError, match="teacher"):
        b.load_state_dict(a.state_dict())
