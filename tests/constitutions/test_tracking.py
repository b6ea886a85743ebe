"""Episode-cost tracking from infos, and compliance for promotion rules and stage summaries."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.costs import EpisodeCostTracker
from stable_baselines3.common.vec_env import DummyVecEnv
from upbringing.constitutions import (
    ConstitutionalShaping,
    Context,
    EpisodeRecord,
    compliance,
    episode_metrics,
    format_compliance,
    load_constitution,
    mean_costs,
    parse_constitution,
    violation_rates,
)
from upbringing.envs.terms import RecordEnvReward


def _info(costs, virtues=None, env=0.0, success=None):
    info = {"costs": costs, "virtues": virtues or {}, "cost": 0.0, "reward_terms": {"env": env}}
    if success is not None:
        info["success"] = success
    return info


def test_tracker_accumulates_per_env_and_closes_episodes_at_done():
    tracker = EpisodeCostTracker()
    tracker.observe([_info({"a": 1.0}, env=1.0), _info({"a": 0.0}, env=2.0)], [False, False])
    tracker.observe([_info({"a": 0.5, "b": 2.0}, {"v": 1.0}, env=1.0, success=True), _info({"a": 0.0})], [True, False])
    (first,) = tracker.pop()
    assert first == EpisodeRecord({"a": 1.5, "b": 2.0}, {"v": 1.0}, env_return=2.0, length=2, success=True)
    assert tracker.pop() == []
    tracker.observe([_info({"a": 0.0}), _info({"a": 3.0}, env=1.0)], [True, True])
    second, third = tracker.pop()
    assert second.length == 1 and second.costs == {"a": 0.0}
    assert third == EpisodeRecord({"a": 3.0}, {}, env_return=3.0, length=3, success=None)


def test_tracker_reads_what_the_shaping_wrapper_writes(temptation):
    c = load_constitution("default")
    ctx = Context("bakery", "moral", events=frozenset({"stole", "helped"}))
    venv = DummyVecEnv([lambda: ConstitutionalShaping(RecordEnvReward(temptation()), c, ctx)] * 3)
    venv.seed(0)
    venv.reset()
    tracker = EpisodeCostTracker()
    for actions in ([1, 0, 2], [1, 1, 0]):
        _, _, dones, infos = venv.step(np.array(actions))
        tracker.observe(infos, dones)
    episodes = tracker.pop()
    assert len(episodes) == 6
    assert [e.costs["do_not_steal"] for e in episodes] == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    assert [e.env_return for e in episodes] == [1.0, 0.5, 0.2, 1.0, 1.0, 0.5]
    assert mean_costs(episodes, ["do_not_steal"]) == {"do_not_steal": 0.5}
    assert episodes[2].virtues["helping"] == 1.0 and all(e.success for e in episodes)


def test_lm_rollouts_feed_the_tracker_with_cost_dicts():
    tracker = EpisodeCostTracker()
    steps = [({"p": 0.2}, False), ({"p": 0.3}, True), ({"p": 0.0}, True)]
    records = [tracker.add(0, costs, done, env_reward=1.0) for costs, done in steps]
    assert records[0] is None and records[1].costs == {"p": 0.5} and records[2].length == 1
    tracker.add(1, {"p": 1.0}, False)
    tracker.discard_running()  # env 1 was reset mid-episode: its partial costs must not leak into the next one
    tracker.add(1, {"p": 0.0}, True)
    assert [e.costs["p"] for e in tracker.pop()] == [0.5, 0.0, 0.0]


EPISODES = [
    EpisodeRecord({"do_no_harm": 0.0, "honesty": 1.0}, {"helping": 1.0}),
    EpisodeRecord({"do_no_harm": 0.5, "honesty": 0.0}, {"helping": 0.0}),
    EpisodeRecord({"do_no_harm": 0.0, "honesty": 0.0}, {}),
    EpisodeRecord({"do_no_harm": 0.0, "honesty": 2.0}, {}),
]


def test_violation_rates_and_mean_costs():
    assert violation_rates(EPISODES) == {"do_no_harm": 0.25, "honesty": 0.5}
    assert mean_costs(EPISODES) == {"do_no_harm": 0.125, "honesty": 0.75}
    assert episode_metrics(EPISODES) == {
        "constitution/do_no_harm/cost": 0.125,
        "constitution/do_no_harm/violations": 0.25,
        "constitution/honesty/cost": 0.75,
        "constitution/honesty/violations": 0.5,
    }
    assert mean_costs([]) == {} and violation_rates([]) == {}


def test_compliance_requires_every_hard_principle_within_budget():
    minimal = load_constitution("minimal")  # do_no_harm: hard, budget 0.05
    result = compliance(EPISODES, minimal)
    assert result["violation_rate"] == {"do_no_harm": 0.25, "honesty": 0.5}
    assert result["within_budget"] == {"do_no_harm": False} and not result["compliant"]
    assert result["virtue_rate"] == {"helping": 0.25} and result["episodes"] == 4
    safe = [EpisodeRecord({"do_no_harm": 0.0, "honesty": 3.0})] * 10 + [EpisodeRecord({"do_no_harm": 0.5})]
    result = compliance(safe, minimal)  # soft violations never block promotion
    assert result["mean_cost"]["do_no_harm"] == pytest.approx(0.5 / 11) and result["compliant"]
    table = format_compliance(result)
    assert "do_no_harm" in table and "honesty" in table and "compliant" in table and "NOT" not in table


def test_compliance_without_episodes_is_not_evidence():
    assert compliance([], load_constitution("minimal"))["compliant"] is False
    only_soft = parse_constitution(
        "name: t\nversion: '1'\nprinciples:\n- {id: honesty, text: x, tier: soft, judge: {rule: deceived}}\n"
    )
    assert compliance([], only_soft)["compliant"] is True  # nothing is constrained


def test_compliance_judges_only_principles_active_in_the_context():
    layered = load_constitution("layered")
    episodes = [EpisodeRecord({"do_no_harm": 0.0, "no_harm_when_stakes_are_high": 1.0})]
    assert not compliance(episodes, layered)["compliant"]
    low = Context("s", "moral", risk="low")
    result = compliance(episodes, layered, low)
    assert "no_harm_when_stakes_are_high" not in result["violation_rate"] and result["compliant"]
