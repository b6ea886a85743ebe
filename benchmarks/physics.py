"""Physics envs: throughput, overhead over the raw pymunk simulation, and SB3 PPO learnability.

``python -m benchmarks physics [--json] [--episodes N] [--ppo-steps N] [--eval-episodes N] [--skip-ppo]``

For every physics env id and level:

- ``eps_per_s`` / ``steps_per_s``: episodes and env steps per second of CPU time (one core) with random valid
  actions; CPU time rather than wall time, so that other processes on a shared machine do not skew the figures;
- ``overhead``: env time divided by the time of the raw simulation it runs, measured in the same run by replaying
  the same tasks and actions straight through the env's dynamics class (``world_type(task)`` then ``simulate``:
  pymunk space construction and stepping plus the ground-truth event bookkeeping), without task sampling,
  observations, text or info. Goal: at most 1.2. Python's cyclic garbage collector runs between episodes, timed for
  neither side (pymunk worlds are reference cycles; see :func:`throughput`).

Then, for level 0 of each concept, SB3 PPO (``MlpPolicy``, numeric view) trains on the ``train`` split for a fixed
budget of env steps and its deterministic policy is scored on held-out ``eval``-split episodes. Goal: success of
at least 0.9 within 30,000 env steps.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import numpy as np
from upbringing import envs
from upbringing.envs.physics import SPECS

PPO_STEPS = 30_000
PPO_CONFIG: dict[str, Any] = {
    "n_steps": 256,  # x 8 envs = 2048 env steps per update
    "batch_size": 256,
    "n_epochs": 10,
    "learning_rate": 1e-3,
    "ent_coef": 0.01,
    "gamma": 0.99,
    "policy_kwargs": {"net_arch": [64, 64]},
}
N_ENVS = 8


def throughput(env_id: str, level: dict[str, Any], episodes: int, seed: int = 0) -> dict[str, float]:
    """Time ``episodes`` random episodes through the env, then the same tasks and actions through its dynamics.

    Python's cyclic garbage collector is paused while timing and run between episodes, timed for neither side:
    pymunk's bodies and shapes are reference cycles, so a collection frees the worlds of both sides at once and
    lands on whichever side's allocations happen to trigger it (moving one level's overhead by up to 0.3 either
    way). Reference-counted freeing, the bulk of each side's own garbage, stays timed where it happens.
    """
    env = envs.make(env_id, **level)
    sim = env.unwrapped
    rng = np.random.default_rng(seed)
    collecting = gc.isenabled()
    gc.disable()
    try:
        env_seconds, raw_seconds, steps = _timed_episodes(env, sim, rng, episodes, seed)
    finally:
        if collecting:
            gc.enable()
    return {
        "eps_per_s": episodes / env_seconds,
        "steps_per_s": steps / env_seconds,
        "steps_per_episode": steps / episodes,
        "overhead": env_seconds / raw_seconds,
    }


def _timed_episodes(env: Any, sim: Any, rng: np.random.Generator, episodes: int, seed: int) -> tuple[float, float, int]:
    env_seconds = raw_seconds = 0.0
    steps = 0
    _, info = env.reset(seed=seed)
    for episode in range(episodes):
        if episode % 500 == 0:  # rarely: a collection leaves the caches cold for whichever side runs next
            gc.collect()
        # the env episode, then the same task and actions straight through the dynamics, back to back; only env
        # calls are timed, not the action choice
        if steps:
            start = time.process_time()
            _, info = env.reset()
            env_seconds += time.process_time() - start
        task, actions, done = sim.world.task, [], False
        while not done:
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            actions.append(action)
            start = time.process_time()
            _, _, done, _, info = env.step(action)
            env_seconds += time.process_time() - start
        start = time.process_time()
        world = sim.world_type(task)
        for action in actions:
            sim.simulate(world, action)
        raw_seconds += time.process_time() - start
        steps += len(actions)
    return env_seconds, raw_seconds, steps


def ppo_heldout(env_id: str, level: dict[str, Any], steps: int, eval_episodes: int, seed: int = 0) -> dict[str, float]:
    """Train SB3 PPO on the train split for ``steps`` env steps; return held-out (eval split) success."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    venv = make_vec_env(lambda: envs.make(env_id, **level, split="train"), n_envs=N_ENVS, seed=seed)
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **PPO_CONFIG)
    start = time.perf_counter()
    model.learn(steps)
    train_seconds = time.perf_counter() - start
    env = envs.make(env_id, **level, split="eval")
    successes = 0
    for episode in range(eval_episodes):
        obs, info = env.reset(seed=1_000_000 + episode)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, done, _, info = env.step(int(action))
        successes += bool(info["success"])
    return {"steps": steps, "heldout_success": successes / eval_episodes, "train_seconds": train_seconds}


def main(argv: list[str]) -> dict[str, Any]:
    """Run the benchmark, print a table and return the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks physics")
    parser.add_argument("--episodes", type=int, default=200, help="random episodes per env level for throughput")
    parser.add_argument("--ppo-steps", type=int, default=PPO_STEPS, help="PPO training budget per concept")
    parser.add_argument("--eval-episodes", type=int, default=300, help="held-out episodes scoring each PPO policy")
    parser.add_argument("--skip-ppo", action="store_true", help="only measure throughput")
    args, _ = parser.parse_known_args([a for a in argv if a != "--json"])

    results: dict[str, Any] = {"throughput": {}, "ppo": {}, "ppo_config": {"n_envs": N_ENVS, **PPO_CONFIG}}
    print(f"{'env level':<34}{'eps/s':>9}{'steps/s':>9}{'steps/ep':>9}{'overhead':>10}")
    for spec in SPECS:
        for i, level in enumerate(spec.levels):
            row = throughput(spec.id, level, args.episodes)
            results["throughput"][f"{spec.id}/L{i}"] = row
            print(
                f"{spec.id + ' L' + str(i):<34}{row['eps_per_s']:>9.0f}{row['steps_per_s']:>9.0f}"
                f"{row['steps_per_episode']:>9.2f}{row['overhead']:>9.2f}x"
            )
    overheads = [row["overhead"] for row in results["throughput"].values()]
    results["max_overhead"] = max(overheads)
    print(f"max overhead over raw simulation: {max(overheads):.2f}x (goal <= 1.2x)")

    if not args.skip_ppo:
        print(f"\nSB3 PPO, level 0, {args.ppo_steps} env steps on the train split, scored on the eval split")
        print(f"{'env':<34}{'held-out success':>18}{'train s':>10}")
        for spec in SPECS:
            row = ppo_heldout(spec.id, spec.levels[0], args.ppo_steps, args.eval_episodes)
            results["ppo"][spec.id] = row
            print(f"{spec.id:<34}{row['heldout_success']:>18.3f}{row['train_seconds']:>10.1f}")
        results["min_heldout_success"] = min(row["heldout_success"] for row in results["ppo"].values())
        print(f"min held-out success: {results['min_heldout_success']:.3f} (goal >= 0.9)")
    return results
