"""Scaling out on Ray: rollout workers against the single-machine VecEnvs, and a sweep against sequential runs.

``python -m benchmarks scale [--json] [--steps N] [--envs 2,4,8] [--seeds N] [--skip-sweep]``

1. **Env steps per second** (wall clock) of one stage's full env stack (numeric view, reward terms, the default
   constitution's shaping, episode statistics) stepped with random actions through ``vec_env: dummy`` (this
   process), ``subprocess`` (one process per env, SB3's ``SubprocVecEnv``) and ``ray`` (Ray actors), on a cheap
   physics level and on a story stage, with 2, 4 and 8 envs. ``ray`` runs once with as many actors as
   ``subprocess`` has processes (``ray_per_env``: one env each, the equal-worker comparison) and once with two
   actors sharing the envs (``ray_2_workers``); ``ray_vs_subprocess`` is their steps/s over subprocess's, measured
   in the same run (Syllabus reports 70-89% of native speed for its Ray path). Building the VecEnv is timed apart
   (``build_s``): the engine builds one per chunk; Ray's actors outlive the chunk, subprocess workers do not.
2. **A sweep** of 2 teachers x ``--seeds`` seeds of a short config: wall time of ``upbringing sweep`` on a local Ray
   sized to the machine against the same runs one after another (``upbringing train``, one process each, as a
   shell loop would run them), and whether each run's final summary is identical both ways.

Figures are wall-clock on whatever else the machine is doing: ``load_average`` records the 1-minute load average at
the start and end of each part.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CONFIG = """\
name: scale
seed: 0
constitution: default
agent: {kind: sb3_ppo, n_steps: 64, batch_size: 64, n_epochs: 4}
curriculum: {chunk_steps: 512, n_envs: 8, review_fraction: 0.1}
tracking: {wandb: off, sample_episodes: 0}
stages:
  - name: permanence
    env: physics/ObjectPermanence-v0
    levels: [{screen_width: 3, n_objects: 1, distractors: 0}]
    promotion: {metric: success, threshold: 0.95, window: 40, min_episodes: 40}
    eval_episodes: 20
    budget: 6144
  - name: stories
    env: moral/Stories-v0
    levels: [{level: 0}]
    promotion: {metric: success, threshold: 0.95, window: 40, min_episodes: 40, require_compliance: true}
    eval_episodes: 20
    budget: 6144
"""
TEACHERS = ("sequential", "direct")


def _load() -> float:
    return os.getloadavg()[0]


def steps_per_second(factory: Any, kind: str, n_envs: int, steps: int, workers: int) -> dict[str, float]:
    """Build a VecEnv of ``kind``, then time ``steps`` steps of every env with random actions (after a warm-up)."""
    from upbringing.curriculum.config import CurriculumConfig
    from upbringing.curriculum.rayconfig import RayConfig
    from upbringing.curriculum.stage_envs import make_vec_env

    start = time.perf_counter()
    ray = RayConfig(workers=workers) if kind == "ray" else None
    venv = make_vec_env(factory, CurriculumConfig(n_envs=n_envs, vec_env=kind, ray=ray))
    venv.seed(0)
    venv.reset()
    build = time.perf_counter() - start
    rng = np.random.default_rng(0)
    n = int(venv.action_space.n)
    for _ in range(10):
        venv.step(rng.integers(n, size=n_envs))
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(rng.integers(n, size=n_envs))
    seconds = time.perf_counter() - start
    venv.close()
    return {"steps_per_s": n_envs * steps / seconds, "build_s": build}


def vec_envs(steps: int, sizes: list[int], root: Path) -> dict[str, Any]:
    """Part 1: steps/s of each VecEnv kind, stage and size."""
    from upbringing.curriculum.checks import load_config
    from upbringing.curriculum.runner import Run

    (root / "scale.yaml").write_text(CONFIG)
    run = Run(load_config(root / "scale.yaml"), root / "factories", progress=False)
    out: dict[str, Any] = {"load_average_start": _load()}
    for stage, label in ((0, "physics/ObjectPermanence-v0 level 0"), (1, "moral/Stories-v0 level 0")):
        factory = run.factory(stage, 0)
        rows: dict[str, Any] = {}
        for n in sizes:
            row: dict[str, Any] = {
                "dummy": steps_per_second(factory, "dummy", n, steps, 0),
                "subprocess": steps_per_second(factory, "subprocess", n, steps, 0),
                "ray_per_env": steps_per_second(factory, "ray", n, steps, n),
                "ray_2_workers": steps_per_second(factory, "ray", n, steps, 2),
            }
            sub = row["subprocess"]["steps_per_s"]
            row["ray_vs_subprocess"] = row["ray_per_env"]["steps_per_s"] / sub
            row["ray_2_workers_vs_subprocess"] = row["ray_2_workers"]["steps_per_s"] / sub
            rows[str(n)] = row
            print(
                f"{label:38s} {n} envs: "
                + "  ".join(
                    f"{k} {v['steps_per_s']:7.0f}/s (build {v['build_s']:.1f} s)"
                    for k, v in row.items()
                    if isinstance(v, dict)
                )
                + f"  ray/subprocess {row['ray_vs_subprocess']:.2f} "
                f"(2 workers {row['ray_2_workers_vs_subprocess']:.2f})",
                flush=True,
            )
        out[label] = rows
    out["load_average_end"] = _load()
    return out


def sweep(seeds: int, root: Path) -> dict[str, Any]:
    """Part 2: 2 teachers x ``seeds`` seeds as one sweep on local Ray, and the same runs one after another."""
    from upbringing.curriculum.sweep import run_sweep

    config = root / "scale.yaml"
    config.write_text(CONFIG)
    seed_list = [str(s) for s in range(seeds)]
    out: dict[str, Any] = {"runs": len(TEACHERS) * seeds, "load_average_start": _load()}
    start = time.perf_counter()
    record = run_sweep(
        config, [], [("curriculum.teacher", list(TEACHERS))], seed_list, run_root=root / "sweep", say=print
    )
    out["ray_sweep_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for teacher in TEACHERS:
        for seed in seed_list:
            name = f"curriculum.teacher={teacher},seed={seed}"
            overrides = [f"curriculum.teacher={teacher}", f"seed={seed}", f"name=scale-curriculum.teacher={teacher}"]
            cmd = [sys.executable, "-m", "upbringing.curriculum.cli", "train", str(config), *overrides]
            subprocess.run(
                [*cmd, "--run-dir", str(root / "sequential" / name), "--quiet"], check=True, stdout=subprocess.DEVNULL
            )
    out["sequential_s"] = time.perf_counter() - start
    out["speedup"] = out["sequential_s"] / out["ray_sweep_s"]
    identical = []
    for r in record["runs"]:
        ours = json.loads((Path(r["run_dir"]) / "summary.json").read_text())
        theirs = json.loads((root / "sequential" / r["variant"] / "summary.json").read_text())
        identical.append(ours == theirs)
    out["identical_summaries"] = sum(identical)
    out["final_scores"] = {r["variant"]: r.get("final_scores") for r in record["runs"]}
    out["load_average_end"] = _load()
    print(
        f"sweep of {out['runs']} runs: local Ray {out['ray_sweep_s']:.0f} s, one after another "
        f"{out['sequential_s']:.0f} s (x{out['speedup']:.2f}); identical final summaries: "
        f"{out['identical_summaries']}/{out['runs']}",
        flush=True,
    )
    return out


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks scale")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--steps", type=int, default=200, help="timed steps of every env per measurement")
    parser.add_argument("--envs", default="2,4,8", help="numbers of envs")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per teacher in the sweep")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args(argv)
    from upbringing.curriculum.raycluster import connect

    connect(None, "benchmarks scale")  # one local Ray, sized to the machine, for both parts
    result: dict[str, Any] = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        result["vec_env_steps_per_s"] = vec_envs(args.steps, [int(n) for n in args.envs.split(",")], Path(tmp))
        if not args.skip_sweep:
            result["sweep"] = sweep(args.seeds, Path(tmp))
    return result
