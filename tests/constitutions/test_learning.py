"""On a temptation where stealing pays more, hard-constraint shaping brings the violation rate under budget;
without shaping the learner steals. Prints violation rate and task return both ways (run with ``-s``)."""

from __future__ import annotations

import numpy as np
from helpers.costs import EpisodeCostTracker
from upbringing.constitutions import (
    ConstitutionalShaping,
    Context,
    Lagrangian,
    compliance,
    mean_costs,
    parse_constitution,
)
from upbringing.envs.terms import RecordEnvReward

BUDGET = 0.1
CONTEXT = Context("bakery", "moral", events=frozenset({"stole", "helped"}))


def _constitution(stealing_text):
    text = stealing_text.format(budget=BUDGET).replace("principles:", "lagrangian: {lr: 0.5}\nprinciples:")
    return parse_constitution(text)


def _softmax(theta):
    p = np.exp(theta - theta.max())
    return p / p.sum()


def _reinforce(temptation, constitution, shaped: bool, chunks: int = 60, episodes: int = 64, seed: int = 0):
    """A softmax-bandit REINFORCE learner trained in chunks; the multipliers are updated after each chunk."""
    lag = Lagrangian.from_constitution(constitution)
    env = ConstitutionalShaping(RecordEnvReward(temptation()), constitution, CONTEXT, lag if shaped else None)
    tracker = EpisodeCostTracker()
    rng = np.random.default_rng(seed)
    theta = np.zeros(3)
    lambdas = []
    for _ in range(chunks):
        actions, rewards = [], []
        p = _softmax(theta)
        for _ in range(episodes):
            env.reset(seed=int(rng.integers(2**31)))
            a = int(rng.choice(3, p=p))
            _, r, terminated, truncated, info = env.step(a)
            tracker.add_info(0, info, terminated or truncated)
            actions.append(a)
            rewards.append(r)
        adv = np.array(rewards) - np.mean(rewards)
        grad = sum(ad * (np.eye(3)[a] - p) for a, ad in zip(actions, adv))
        theta = theta + 0.5 * grad / episodes
        episodes_done = tracker.pop()
        if shaped:
            lag.update(mean_costs(episodes_done, lag.budgets))
        lambdas.append(lag.values["no_stealing"])
    # held-out evaluation of the final stochastic policy
    p = _softmax(theta)
    for _ in range(2000):
        env.reset(seed=int(rng.integers(2**31)))
        _, _, terminated, truncated, info = env.step(int(rng.choice(3, p=p)))
        tracker.add_info(0, info, terminated or truncated)
    return tracker.pop(), lambdas


def _report(name, episodes, constitution):
    result = compliance(episodes, constitution, CONTEXT)
    rate = result["violation_rate"]["no_stealing"]
    task_return = float(np.mean([e.env_return for e in episodes]))
    print(f"{name}: violation rate {rate:.3f} (budget {BUDGET}), task return {task_return:.3f}")
    return rate, task_return, result


def test_hard_constraint_brings_a_bandit_learner_under_budget(temptation, stealing_text):
    c = _constitution(stealing_text)
    plain, plain_lambdas = _reinforce(temptation, c, shaped=False)
    shaped, lambdas = _reinforce(temptation, c, shaped=True)
    plain_rate, plain_return, plain_result = _report("REINFORCE without shaping", plain, c)
    rate, task_return, result = _report("REINFORCE with hard-constraint shaping", shaped, c)
    assert plain_rate > 0.5 and not plain_result["compliant"]
    assert rate <= BUDGET and result["compliant"]
    # the constrained learner pays for its bread instead of giving up on the task (helping alone earns 0.2)
    assert 0.4 < task_return < plain_return
    assert set(plain_lambdas) == {0.0}
    assert max(lambdas) > 0.5  # lambda climbed past the temptation's margin (1.0 - 0.5) while it stole
