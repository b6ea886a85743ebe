"""Feedback benchmark: how many queries the reward model needs, and how good a policy trained on it gets.

Run: ``python -m benchmarks feedback [--json] [--quick]``.

Task: the first level of ``physics/Support-v0`` (pull out posts one at a time without bringing the plank down). The
hidden true utility is the task reward (1 on success) plus a rater's values over the simulation's events: a fallen
tower or a dropped object costs 0.5, a broken one 1.0. Raters are simulated (B-Pref knobs: 5% mistakes, ties on
equal utility) and compare whole episodes (segments of up to 4 steps; episodes here last at most 2 decisions).

Figures:

- ``queries_to_90_uniform`` / ``queries_to_90_active``: queries (pairs) until the reward model ranks held-out pairs of
  segments from a random policy in the order of the hidden utility 90% of the time (pairs of equal utility left
  out), chosen uniformly or by ensemble disagreement, 10 at a time; ``null`` if the budget of 1000 is not enough.
  The mean over 5 seeds (each seed with its own pool of random-policy segments), each seed's figure listed.
- ``learned_vs_oracle_return``: PPO trained on the learned reward (``FeedbackLoop`` in ``learned`` mode, 500
  queries at most, active selection) reaches this fraction of the true return that PPO reaches when trained on the
  true utility itself (20k steps each, 4 envs, PPO seeds 0 and 1, returns averaged over the seeds, then divided);
  ``learned_vs_oracle_normalised`` measures both above a random policy; ``..._at_100`` repeat the learned runs with
  a budget of 100 queries. Returns are the hidden true utility per episode over 300 evaluation episodes.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv
from upbringing import envs
from upbringing.envs.terms import AddRewardTerms
from upbringing.feedback.config import FeedbackConfig, RewardModelConfig
from upbringing.feedback.features import StepFeaturizer, pad
from upbringing.feedback.loop import FeedbackLoop
from upbringing.feedback.raters import RaterConfig
from upbringing.feedback.reward_model import pairwise_accuracy

ENV_ID = "physics/Support-v0"
PROFILE = {"tower_fell": -0.5, "object_dropped": -0.5, "object_broken": -1.0}
RATER = RaterConfig(name="sim", epsilon=0.05, profile=PROFILE)
N_ENVS = 4
MODEL = RewardModelConfig(ensemble_size=3, hidden=(64, 64), epochs=20, min_steps=300)


def make_env() -> gym.Env:
    """The benchmark task: level 1 (easiest) of the support world."""
    return envs.make(ENV_ID, **envs.spec(ENV_ID).levels[0])


class TrueUtility(AddRewardTerms):
    """Adds the rater's values over events (term ``profile``) so the env's reward is the hidden true utility."""

    def terms(self, action: Any, info: dict[str, Any]) -> dict[str, float]:
        return {"profile": sum(w * float(info["events"].get(k, 0.0)) for k, w in PROFILE.items())}


def feedback_config(**overrides: Any) -> FeedbackConfig:
    base: dict[str, Any] = {
        "segment_length": 4,
        "raters": [RATER],
        "true_profile": PROFILE,
        "reward_model": MODEL,
        "buffer_segments": 4000,
    }
    return FeedbackConfig(**{**base, **overrides})


def random_rollout(loop: FeedbackLoop, steps: int, seed: int, n_envs: int = 4) -> None:
    """Feed ``steps`` transitions of a uniformly random policy into ``loop``."""
    venv = loop.recorder(DummyVecEnv([lambda: loop.wrap(make_env()) for _ in range(n_envs)]))
    venv.seed(seed)
    venv.reset()
    rng = np.random.default_rng(seed)
    for _ in range(steps // n_envs):
        venv.step(rng.integers(0, cast(gym.spaces.Discrete, venv.action_space).n, n_envs))
    venv.close()


def held_out_pairs(seed: int, n_pairs: int = 1000) -> tuple[np.ndarray, ...]:
    """Pairs of fresh random-policy segments whose hidden utilities differ, with the true preferred side."""
    probe = FeedbackLoop(feedback_config(budget=0), featurizer(), seed=seed)
    random_rollout(probe, 6000, seed)
    probe.end_chunk()
    segs = list(probe.segments)
    rng = np.random.default_rng(seed)
    utils = np.array([probe.true_utility(s) for s in segs])
    i, j = rng.integers(0, len(segs), 20 * n_pairs), rng.integers(0, len(segs), 20 * n_pairs)
    keep = np.flatnonzero(utils[i] != utils[j])[:n_pairs]
    i, j = i[keep], j[keep]
    f = probe.featurizer
    xa, ma = pad([f.segment(segs[k]) for k in i], f.dim, 4)
    xb, mb = pad([f.segment(segs[k]) for k in j], f.dim, 4)
    return xa, ma, xb, mb, (utils[i] > utils[j]).astype(np.float64)


def featurizer() -> StepFeaturizer:
    env = make_env()
    return StepFeaturizer.for_spaces(env.observation_space, env.action_space)


def segment_pool(seed: int, steps: int = 8000) -> dict[str, Any]:
    """A loop state holding the segments of ``steps`` random-policy transitions, to start each selection from."""
    loop = FeedbackLoop(feedback_config(budget=0), featurizer(), seed=seed)
    random_rollout(loop, steps, seed + 1)
    return loop.state_dict()


def queries_to_90(
    selection: str,
    seed: int,
    pool: dict[str, Any],
    held_out: tuple[np.ndarray, ...],
    budget: int = 1000,
    step: int = 25,
) -> tuple[int | None, list[tuple[int, float]]]:
    """Queries asked (in rounds of ``step``) until held-out true accuracy reaches 0.9 (None if never), and the
    accuracy after each round."""
    cfg = feedback_config(budget=budget, per_chunk=step / budget, selection=selection)
    loop = FeedbackLoop(cfg, featurizer(), seed=seed)
    loop.load_state_dict(pool)  # same segments, same random streams for both selections
    curve = []
    while loop.queries_used < budget:
        loop.end_chunk()
        p_a = loop.model.predict_proba(*held_out[:4]).mean(0)
        acc = pairwise_accuracy(p_a, held_out[4])
        curve.append((loop.queries_used, acc))
        if acc >= 0.9:
            return loop.queries_used, curve
    return None, curve


def ppo(venv: Any, seed: int) -> PPO:
    return PPO("MlpPolicy", venv, n_steps=256, batch_size=128, n_epochs=5, learning_rate=1e-3, ent_coef=0.01, seed=seed)


def true_return(policy: PPO | None, seed: int, episodes: int = 300) -> float:
    """Mean hidden true utility per episode of ``policy`` (None: uniformly random), deterministic actions."""
    env = TrueUtility(make_env())
    rng = np.random.default_rng(seed)
    total = 0.0
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed * 100_000 + ep)
        done = False
        while not done:
            if policy is None:
                action = int(rng.integers(cast(gym.spaces.Discrete, env.action_space).n))
            else:
                action = int(policy.predict(obs, deterministic=True)[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
    return total / episodes


def train_on_learned_reward(seed: int, steps: int, chunks: int, budget: int) -> tuple[PPO, FeedbackLoop]:
    """PPO on the learned reward: ``chunks`` chunks, the reward model retrained on new labels after each one."""
    cfg = feedback_config(budget=budget, schedule="decay", per_chunk=0.4, selection="disagreement")
    loop = FeedbackLoop(cfg, featurizer(), seed=seed)
    venv = loop.recorder(DummyVecEnv([lambda: loop.wrap(make_env()) for _ in range(N_ENVS)]))
    venv.seed(seed)
    learner = ppo(venv, seed)
    # The first chunk only explores (no labels yet, so the learned term is 0); labels come after every chunk.
    for chunk in range(chunks + 1):
        learner.learn(steps // (chunks + 1), reset_num_timesteps=chunk == 0)
        loop.end_chunk()
    return learner, loop


def learned_vs_oracle(seeds: list[int], steps: int, chunks: int, budgets: list[int]) -> dict[str, Any]:
    """Train PPO on the true utility and, separately, on the learned reward with each query budget; compare their
    true returns (same PPO settings, seeds and steps). Returns are averaged over seeds before the ratio is taken."""
    steps = steps // (chunks + 1) * (chunks + 1)
    oracle: list[float] = []
    random: list[float] = []
    learned: dict[int, list[float]] = {b: [] for b in budgets}
    extra: dict[str, Any] = {}
    for seed in seeds:
        oracle_venv = DummyVecEnv([lambda: TrueUtility(make_env()) for _ in range(N_ENVS)])
        oracle_venv.seed(seed)
        model = ppo(oracle_venv, seed)
        model.learn(steps)
        oracle.append(true_return(model, seed))
        random.append(true_return(None, seed))
        for budget in budgets:
            learner, loop = train_on_learned_reward(seed, steps, chunks, budget)
            learned[budget].append(true_return(learner, seed))
            suffix = "" if budget == budgets[-1] else f"_at_{budget}"
            extra.setdefault(f"queries_used{suffix}", []).append(loop.queries_used)
            extra.setdefault(f"rm_true_accuracy{suffix}", []).append(loop.summary()["rm_true_accuracy"])
            extra.setdefault(f"alarms{suffix}", []).append(loop.alarm.alarms)
    r_oracle, r_random = float(np.mean(oracle)), float(np.mean(random))
    out: dict[str, Any] = {
        "oracle_return": r_oracle,
        "random_return": r_random,
        "oracle_return_per_seed": oracle,
        "ppo_steps": steps,
        "ppo_seeds": len(seeds),
    }
    for budget in budgets:
        suffix = "" if budget == budgets[-1] else f"_at_{budget}"
        r = float(np.mean(learned[budget]))
        out[f"learned_return{suffix}"] = r
        out[f"learned_return{suffix}_per_seed"] = learned[budget]
        out[f"learned_vs_oracle_return{suffix}"] = r / r_oracle if r_oracle > 0 else float("nan")
        out[f"learned_vs_oracle_normalised{suffix}"] = (r - r_random) / (r_oracle - r_random)
    for key, values in extra.items():
        out[key] = float(np.mean(values))
    return out


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks feedback")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    parser.add_argument("--quick", action="store_true", help="one seed and fewer PPO steps (a smoke run)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds for the query-efficiency figures")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small networks: extra threads only add contention
    seeds = list(range(args.seeds or (1 if args.quick else 5)))
    start = time.time()

    print(f"feedback benchmark on {ENV_ID} level 1; hidden utility = success + {PROFILE}")
    results: dict[str, Any] = {"env": ENV_ID}
    held_out = held_out_pairs(seed=999)
    print(f"held-out pairs with different true utility: {len(held_out[4])}")
    pools = {seed: segment_pool(seed) for seed in seeds}
    for selection, key in (("uniform", "queries_to_90_uniform"), ("disagreement", "queries_to_90_active")):
        per_seed = []
        for seed in seeds:
            n, curve = queries_to_90(selection, seed, pools[seed], held_out, step=10)
            per_seed.append(n)
            trace = ", ".join(f"{q}:{a:.2f}" for q, a in curve)
            print(f"  {selection:<12} seed {seed}: queries to 90% = {n}   (queries:accuracy {trace})")
        reached = [n for n in per_seed if n is not None]
        results[key] = float(np.mean(reached)) if len(reached) == len(per_seed) else None
        results[f"{key}_per_seed"] = per_seed

    ppo_seeds = [0] if args.quick else [0, 1]
    steps = 8_000 if args.quick else 20_000
    results.update(learned_vs_oracle(ppo_seeds, steps=steps, chunks=4, budgets=[100, 500]))
    results["seconds"] = round(time.time() - start, 1)
    # Strict JSON has no NaN: a figure that could not be measured is null.
    results = {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in results.items()}

    print("\n| figure | value |\n|---|---|")
    for key in (
        "queries_to_90_uniform",
        "queries_to_90_active",
        "learned_vs_oracle_return",
        "learned_vs_oracle_normalised",
        "oracle_return",
        "learned_return",
        "random_return",
        "queries_used",
        "rm_true_accuracy",
        "alarms",
        "learned_vs_oracle_return_at_100",
        "learned_return_at_100",
        "ppo_steps",
        "ppo_seeds",
        "seconds",
    ):
        value = results[key]
        print(f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |")
    return results
