"""On a temptation where stealing pays more, hard-constraint shaping brings the violation rate under budget;
without shaping the learner steals. Prints violation rate and task return both ways (run with ``-s``)."""

from __future__ import annotations

import numpy as np
import pytest
from upbringing.constitutions import (
    ConstitutionalShaping,
    Context,
    EpisodeCostTracker,
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


def _ppo(temptation, constitution, shaped: bool, steps: int):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv
    from upbringing.constitutions import ConstitutionCallback

    lag = Lagrangian.from_constitution(constitution)
    venv = DummyVecEnv([lambda: ConstitutionalShaping(RecordEnvReward(temptation()), constitution, CONTEXT, lag)] * 8)
    venv.seed(0)
    callback = ConstitutionCallback(lag if shaped else None)
    model = PPO(
        "MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=2, learning_rate=5e-3, gamma=0.0, seed=0,
        policy_kwargs={"net_arch": [16]}, device="cpu",
    )  # fmt: skip
    model.learn(steps, callback=callback)
    # evaluate the trained policy (the multipliers no longer change)
    tracker = EpisodeCostTracker()
    obs = venv.reset()
    for _ in range(64):
        assert isinstance(obs, np.ndarray)  # a Box observation space
        actions, _ = model.predict(obs, deterministic=False)
        obs, _, dones, infos = venv.step(actions)
        tracker.observe(infos, dones)
    venv.close()
    return tracker.pop(), callback, lag


@pytest.mark.slow
def test_sb3_ppo_with_the_callback_keeps_the_constraint(temptation, stealing_text, one_torch_thread):
    c = _constitution(stealing_text)
    plain, plain_cb, _ = _ppo(temptation, c, shaped=False, steps=256 * 25)
    shaped, cb, lag = _ppo(temptation, c, shaped=True, steps=256 * 25)
    plain_rate, plain_return, _ = _report("SB3 PPO without shaping", plain, c)
    rate, task_return, result = _report("SB3 PPO with hard-constraint shaping", shaped, c)
    assert plain_rate > 0.5 and plain_return > task_return
    assert rate <= BUDGET and result["compliant"] and task_return > 0.4
    lambdas = [h["constitution/no_stealing/lambda"] for h in cb.history]
    costs = [h["constitution/no_stealing/cost"] for h in cb.history]
    # lambda rose on every update whose measured cost was over budget, and fell (not below 0) otherwise
    for before, after, cost in zip([0.0, *lambdas], lambdas, costs):
        assert (after > before) if cost > BUDGET else (after <= before)
        assert after >= 0.0
    assert lag.values["no_stealing"] == lambdas[-1] > 0.5
    assert "constitution/no_stealing/lambda" not in plain_cb.history[-1]
    assert len(cb.episodes) == 256 * 25  # one-step episodes: every step was tracked
