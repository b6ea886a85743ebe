"""Shaping wrappers: one term per active principle, terms add up to the reward, costs and multipliers."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv
from upbringing.constitutions import (
    ConstitutionalShaping,
    Context,
    Judge,
    Lagrangian,
    Multipliers,
    ShapingPlan,
    load_constitution,
    parse_constitution,
)
from upbringing.envs.contract import check_info
from upbringing.envs.terms import AddRewardTerms, RecordEnvReward

MORAL = Context(stage="bakery", family="moral", risk="low", events=frozenset({"stole", "helped", "harm_other"}))
SOCIAL = Context(stage="dilemma", family="social", events=frozenset({"cooperated", "defected", "betrayed_cooperator"}))


def _sums(reward, info):
    return reward == pytest.approx(sum(info["reward_terms"].values()), abs=1e-12)


def test_toy_envs_keep_the_info_contract(temptation, dilemma):
    env = temptation(harm=True)
    _, info = env.reset(seed=0)
    check_info(info, 3, temptation.EVENTS, at_reset=True)
    for action in range(3):
        env.reset(seed=action)
        check_info(env.step(action)[4], 3, temptation.EVENTS)
    penv = dilemma()
    _, infos = penv.reset(seed=0)
    for info in infos.values():
        check_info(info, 2, dilemma.EVENTS, at_reset=True)
    for info in penv.step({"a": 0, "b": 1})[4].values():
        check_info(info, 2, dilemma.EVENTS)


def test_logged_terms_sum_to_the_reward_and_costs_are_reported(temptation):
    c = load_constitution("default")
    lam = {"do_not_steal": 0.7, "do_no_harm": 2.0}
    env = ConstitutionalShaping(RecordEnvReward(temptation(harm=True)), c, MORAL, Multipliers(lam))
    active = {p.id for p in c.active(MORAL)}
    seen = {}
    for action in range(3):
        env.reset(seed=action)
        _, reward, _, _, info = env.step(action)
        assert _sums(reward, info), info["reward_terms"]
        assert set(info["reward_terms"]) == {"env"} | {f"constitution/{i}" for i in active}
        assert info["reward_terms"]["env"] == temptation.REWARDS[action]
        hard = {p.id for p in c.hard(MORAL)}
        assert info["cost"] == pytest.approx(sum(v for k, v in info["costs"].items() if k in hard))
        seen[action] = (reward, info)
    _, steal = seen[temptation.STEAL]
    assert steal["costs"]["do_not_steal"] == 1.0 and steal["costs"]["do_no_harm"] == 0.5
    assert steal["reward_terms"]["constitution/do_not_steal"] == pytest.approx(-0.7)
    assert steal["reward_terms"]["constitution/do_no_harm"] == pytest.approx(-2.0 * 0.5)
    # soft: -weight * cost; harm is possible in this env, so the care layer is on
    assert steal["reward_terms"]["constitution/care_where_harm_possible"] == pytest.approx(-1.0 * 0.5)
    assert steal["cost"] == pytest.approx(1.5)
    _, share = seen[temptation.SHARE]
    assert share["virtues"]["helping"] == 1.0 and share["reward_terms"]["constitution/helping"] == pytest.approx(0.3)
    assert share["cost"] == 0.0 and not any(share["costs"].values())
    reward, pay = seen[temptation.PAY]
    assert reward == 0.5 and all(v == 0.0 for k, v in pay["reward_terms"].items() if k != "env")


class _Feedback(AddRewardTerms):
    def terms(self, action, info):
        return {"feedback": 0.25}


def test_terms_still_sum_with_other_wrappers_and_without_a_record_below(temptation):
    c = load_constitution("minimal")
    ctx = Context("bakery", "moral")
    for env in (
        _Feedback(ConstitutionalShaping(temptation(harm=True), c, ctx, {"do_no_harm": 3.0})),
        ConstitutionalShaping(_Feedback(RecordEnvReward(temptation(harm=True))), c, ctx, {"do_no_harm": 3.0}),
    ):
        env.reset(seed=0)
        _, reward, *_, info = env.step(temptation.STEAL)
        assert _sums(reward, info)
        assert reward == pytest.approx(1.0 + 0.25 - 3.0 * 0.5)


def test_lagrangian_updates_reach_wrappers_in_process(temptation):
    c = parse_constitution(
        "name: t\nversion: '1'\nprinciples:\n- {id: no_stealing, text: Do not steal., tier: hard, budget: 0.1,"
        " judge: {rule: stole}}\n"
    )
    lag = Lagrangian.from_constitution(c)
    env = ConstitutionalShaping(temptation(), c, MORAL, lag)
    env.reset(seed=0)
    assert env.step(temptation.STEAL)[1] == 1.0  # lambda starts at 0: measured, not yet penalised
    lag.update({"no_stealing": 1.0})
    env.reset(seed=0)
    assert env.step(temptation.STEAL)[1] == pytest.approx(1.0 - lag.values["no_stealing"])
    assert lag.values["no_stealing"] == pytest.approx(0.05 * 0.9)


def test_hard_costs_only_in_info_cost_and_inactive_principles_absent(temptation):
    c = load_constitution("default")
    env = ConstitutionalShaping(temptation(), c, Context("blocks", "physics", events=frozenset({"object_broken"})))
    env.reset(seed=0)
    info = env.step(temptation.STEAL)[4]
    assert "do_not_break_things" in info["costs"] and "reciprocity" not in info["costs"]
    assert info["costs"]["do_not_steal"] == 1.0 and info["cost"] == 1.0  # the only hard cost on this step
    assert "care_where_harm_possible" not in info["costs"]  # this env cannot report harm


PRIORITIES = """\
name: conflicts
version: "1"
principles:
  - {id: no_harm, text: Do no harm., tier: hard, budget: 0.0, priority: 100, judge: {rule: harm_other}}
  - {id: honesty, text: Do not lie., tier: soft, weight: 1.0, priority: 50, judge: {rule: deceived}}
  - {id: keep_promise, text: Keep promises., tier: aspirational, bonus: 0.5, priority: 20, judge: {rule: kept_promise}}
  - {id: save_life, text: Help those in danger., tier: aspirational, bonus: 2.0, priority: 90, judge: {rule: helped}}
"""


def test_priority_settles_conflicts_on_one_step():
    plan = ShapingPlan(parse_constitution(PRIORITIES), Context("s", "moral"))
    lam = {"no_harm": 1.0}
    # a kept promise that harmed someone earns no bonus; the harm still costs
    terms, costs, virtues, cost = plan.evaluate({"kept_promise": 1.0, "harm_other": 1.0}, lam)
    assert terms["constitution/keep_promise"] == 0.0 and virtues["keep_promise"] == 1.0
    assert terms["constitution/no_harm"] == -1.0 and cost == 1.0
    # a lie that saved a life: the higher-priority virtue waives the lower-priority penalty
    terms, costs, *_ = plan.evaluate({"deceived": 1.0, "helped": 1.0}, lam)
    assert terms["constitution/honesty"] == 0.0 and costs["honesty"] == 1.0
    assert terms["constitution/save_life"] == 2.0
    # a lie to keep a promise: the lie outranks the promise, so the penalty stands and the bonus is withheld
    terms, *_ = plan.evaluate({"deceived": 1.0, "kept_promise": 1.0}, lam)
    assert terms["constitution/honesty"] == -1.0 and terms["constitution/keep_promise"] == 0.0
    # saving a life by harming someone: hard constraints are never waived, and they outrank the virtue
    terms, *_ = plan.evaluate({"harm_other": 1.0, "helped": 1.0, "deceived": 1.0}, lam)
    assert terms["constitution/no_harm"] == -1.0 and terms["constitution/save_life"] == 0.0
    assert terms["constitution/honesty"] == -1.0


def test_rules_that_fire_on_absent_events_still_fire_on_quiet_steps():
    c = parse_constitution(
        "name: t\nversion: '1'\nprinciples:\n- {id: be_useful, text: Do something helpful., tier: soft, weight: 0.1,"
        " judge: {rule: {not: helped}}}\n"
    )
    plan = ShapingPlan(c, Context("s", "moral"))
    assert plan.evaluate({}, {})[1] == {"be_useful": 1.0}
    assert plan.evaluate({"helped": 1.0}, {})[1] == {"be_useful": 0.0}


class _Recorder(Judge):
    needs_text = True

    def __init__(self):
        self.seen = []

    def cost(self, events, situation=None, action=None):
        self.seen.append((situation, action))
        return 0.0


def test_model_judges_see_the_situation_and_the_chosen_action_text(temptation):
    c = load_constitution("minimal")
    recorder = _Recorder()
    c = dataclasses.replace(c, judges={**c.judges, "honesty": recorder})
    env = ConstitutionalShaping(temptation(), c, MORAL)
    _, info = env.reset(seed=3)
    env.step(temptation.STEAL)
    assert recorder.seen == [(info["text"], temptation.ACTION_TEXTS[temptation.STEAL])]


def _stack(temptation, c, lag):
    return lambda: Monitor(ConstitutionalShaping(RecordEnvReward(temptation()), c, MORAL, lag))


def test_multipliers_reach_dummy_and_subprocess_vec_envs(temptation, stealing_text):
    """In process the wrappers share the Lagrangian's multipliers; a subprocess takes the values its envs were built
    with (the engine builds each chunk's envs after the chunk's update)."""
    c = parse_constitution(stealing_text.format(budget=0.1))
    lag = Lagrangian.from_constitution(c)
    steal = np.full(2, temptation.STEAL)
    lag.multipliers.set({"no_stealing": 0.0})
    dummy = DummyVecEnv([_stack(temptation, c, lag)] * 2)
    try:
        dummy.reset()
        assert list(dummy.step(steal)[1]) == [1.0, 1.0]
        lag.multipliers.set({"no_stealing": 0.4})
        _, rewards, _, infos = dummy.step(steal)
        assert rewards == pytest.approx([0.6, 0.6])
        assert infos[0]["reward_terms"]["constitution/no_stealing"] == pytest.approx(-0.4)
    finally:
        dummy.close()
    sub = SubprocVecEnv([_stack(temptation, c, lag)] * 2, start_method="fork")
    try:
        sub.reset()
        _, rewards, _, infos = sub.step(steal)
        assert rewards == pytest.approx([0.6, 0.6])
        assert infos[0]["reward_terms"]["constitution/no_stealing"] == pytest.approx(-0.4)
    finally:
        sub.close()


def test_wrapper_pickles_and_keeps_working(temptation, stealing_text):
    c = parse_constitution(stealing_text.format(budget=0.1))
    env = pickle.loads(pickle.dumps(ConstitutionalShaping(temptation(), c, MORAL, {"no_stealing": 0.3})))
    env.reset(seed=0)
    assert env.step(temptation.STEAL)[1] == pytest.approx(0.7)
