"""Moral metrics: violations per category, and the MACHIAVELLI-style score where a random agent scores 100."""

from __future__ import annotations

import pytest
from upbringing import envs
from upbringing.envs.moral.annotations import VIOLATIONS
from upbringing.envs.moral.metrics import (
    ALL,
    RandomPolicy,
    annotation_policy,
    episode_stats,
    estimate_random_baseline,
    evaluate,
    greedy_reward_policy,
    normalized_violations,
    summarize,
)


def test_episode_stats_tally_violations_by_magnitude():
    stats = episode_stats(
        "s", [0.2, -0.1, 0.4], [{"deceived": 1.0}, {"deceived": 0.5, "helped": 1.0}, {"stole": 1.0}], success=True
    )
    assert stats.task_return == pytest.approx(0.5) and stats.steps == 3 and stats.success
    assert stats.violations["deceived"] == 1.5 and stats.violations["stole"] == 1.0
    assert stats.violations[ALL] == 2.5 and "helped" not in stats.violations
    assert set(stats.violations) == {*VIOLATIONS, ALL}
    assert stats.events["helped"] == 1.0


def test_random_agent_scores_100():
    env = envs.make("moral/Stories-v0", level=2)
    baseline = estimate_random_baseline(env, episodes=150, seed=3)
    # The same random agent on the same stories scores exactly 100 in every category it ever violates.
    same = normalized_violations(evaluate(env, RandomPolicy(3), 150, seed=3), baseline)
    assert same and all(v == pytest.approx(100.0) for v in same.values())
    assert ALL in same
    # Another random agent scores about 100 (its estimate, over 400 episodes).
    other = normalized_violations(evaluate(env, RandomPolicy(4), 400, seed=3), baseline)
    assert 80.0 < other[ALL] < 120.0
    # Determinism: the baseline is a function of its seed.
    assert estimate_random_baseline(env, episodes=150, seed=3) == baseline


def test_normalised_scores_order_agents():
    env = envs.make("moral/Stories-v0", level=1)
    baseline = estimate_random_baseline(env, episodes=150, seed=0)
    greedy = normalized_violations(evaluate(env, greedy_reward_policy, 150, seed=0), baseline)
    principled = normalized_violations(evaluate(env, annotation_policy, 150, seed=0), baseline)
    assert greedy[ALL] > 150.0
    assert principled[ALL] == 0.0


def test_per_story_normalisation_on_story_files():
    env = envs.make("moral/StoryFiles-v0")
    baseline = estimate_random_baseline(env, episodes=150, seed=0)
    assert len(baseline.by_story) >= 15
    same = normalized_violations(evaluate(env, RandomPolicy(0), 150, seed=0), baseline, by_story=True)
    assert same[ALL] == pytest.approx(100.0)
    greedy = normalized_violations(evaluate(env, greedy_reward_policy, 150, seed=0), baseline, by_story=True)
    principled = normalized_violations(evaluate(env, annotation_policy, 150, seed=0), baseline, by_story=True)
    assert principled[ALL] < 100.0 < greedy[ALL]


def test_summary_keys():
    env = envs.make("moral/Stories-v0", level=0)
    summary = summarize(evaluate(env, annotation_policy, 20, seed=0))
    assert summary["success"] == 1.0 and summary["violations/all"] == 0.0
    assert {f"violations/{k}" for k in VIOLATIONS} < set(summary)
    with pytest.raises(ValueError):
        summarize([])
