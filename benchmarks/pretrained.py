"""A real pretrained model (SmolLM2-135M-Instruct, pulled offline) against the tiny default: memory, speed, zero-shot
behaviour and a short LoRA PPO run.

``python -m benchmarks pretrained [--json] [--parts rss,mfu,zeroshot,lora] [--episodes 50] [--lora-minutes 15]
[--lora-seeds 0] [--lora-steps 8] [--out PATH]``

Needs ``upbringing models pull smollm2-135m-instruct`` first. With ``--out`` (default: ``benchmarks/results.json``
when ``--json`` is given) the figures are written under ``results.pretrained`` of that file after each part, so a
long run keeps what it measured. Figures:

- ``rss``: ``stories_peak_rss_gb``: peak resident memory of ``upbringing train`` on the quickstart's stories stage
  with SmolLM2 (8 envs, full fine-tuning, default ``memory_budget_gb`` and ``minibatch_size`` 64, feedback and
  evaluation included), measured as the child process's ``ru_maxrss`` (``resource.RUSAGE_CHILDREN``). The run is the
  quickstart's stage shortened to what sets the peak: one rollout of 64 env steps (``n_steps`` 8 x 8 envs) and one
  PPO update over it with two epochs, i.e. two optimizer steps on a minibatch of 64 micro-batched from the budget
  (the second step's forward and backward run beside Adam's moments, as every later step of the quickstart does; a
  single step would miss them, since Adam creates them at its first step), then the stage's evaluation (8
  episodes). ``stories_seconds``: its wall time; ``micro_batch_size``, ``minibatch_steps``: from the run's ``train/``
  metrics; ``load_average_1min``: at start and end.
- ``mfu``: ``matmul_gflops_t{1,2}``: the machine's fp32 matmul throughput (2048 x 2048, best of 5) on 1 and 2 threads;
  ``act_gflops_t{n}`` / ``act_mfu_t{n}``: model FLOP/s of one acting forward (8 stories prompts, no grad) and its
  ratio to the matmul figure; ``update_gflops_t{n}`` / ``update_mfu_t{n}``: the same for forward + backward of a
  PPO micro-batch (full fine-tuning; backward counted as 2x forward). Model FLOPs count 2 x non-embedding parameters
  per packed token, attention scores and mixing over each token's visible context, and the output projection at the
  predicting positions only. ``micro_batches_64``: the micro-batch sizes the default ``memory_budget_gb`` gives a
  minibatch of 64 stories samples (full fine-tuning), ``static_gb`` the weights + gradients + Adam it counts;
  ``load_average_1min_start`` / ``_end``: the machine's load around the measurement (on a shared machine threads
  wait for cores, so the 2-thread figures are meaningful only at a load well under the core count).
- ``zeroshot`` (``--rows`` picks rows): per model row (``tiny``; ``smollm2``: chat prompt with options listed;
  ``smollm2_plain_nolist``: the quickstart's ``list_options: false`` with the plain format): ``stories_success``,
  ``stories_compliance``, ``pd_return`` (vs tit-for-tat, 10 rounds), ``permanence_success``; untrained agents,
  ``--episodes`` held-out episodes (``split="eval"``) each, played and summarised by the project's evaluation code
  (:func:`upbringing.curriculum.evaluation.play` and :func:`~upbringing.curriculum.evaluation.summarize`).
- ``lora``: SmolLM2 with LoRA (r 8, ``lr_lm`` 2e-4, 2 epochs) trained by PPO on the stories stage
  (constitution- and feedback-shaped rewards, 8 envs, ``--lora-steps`` env steps per env per update) for at most
  ``--lora-minutes`` of wall time per seed (whole updates), then ``--episodes`` held-out episodes; per seed in
  ``runs``: ``stories_success``, ``stories_compliance``, ``env_steps``, ``updates``, ``seconds``, ``train_per_update``
  (success rate, approx KL, clip fraction, policy loss of each update); ``mean_stories_*`` over ``--lora-seeds``.
  Seed 0's held-out episodes are the zero-shot part's (same run seed), so those figures compare directly.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from upbringing.curriculum.runner import Run

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
DEFAULT_OUT = Path(__file__).parent / "results.json"
STORIES, PD, PERMANENCE = "stories", "reciprocity", "permanence"


def _quickstart(model: str, **agent: Any) -> Any:
    """The quickstart config with another model (and agent settings), validated."""
    from upbringing.curriculum.checks import load_config

    overrides = [f"agent.model={model}"] + [f"agent.{k}={v}" for k, v in agent.items()]
    return load_config(ROOT / "configs" / "quickstart.yaml", overrides)


def _run(config: Any, folder: Path) -> Any:
    from upbringing.curriculum.runner import Run

    config = config.model_copy(update={"tracking": config.tracking.model_copy(update={"wandb": "off"})})
    return Run(config, folder, progress=False)


def _stage(run: Run, name: str) -> int:
    return [s.name for s in run.config.stages].index(name)


def heldout(run: Run, stage: str, episodes: int) -> dict[str, Any]:
    """Held-out (eval split) episodes of ``stage`` at its last level, summarised with compliance."""
    from upbringing.curriculum.evaluation import play, summarize
    from upbringing.curriculum.factory import eval_seeds
    from upbringing.curriculum.suites import Variant

    i = _stage(run, stage)
    seeds = eval_seeds(run.config.seed + 7919, i, 1, episodes)
    result = play(run, i, Variant("held-out", split="eval"), seeds)
    return summarize(result, run.stages[i].constitution)


# ------------------------------------------------------------------------------------------------------------ rss
def part_rss(timeout_s: float = 3600.0) -> dict[str, Any]:
    """Peak RSS of a short `upbringing train` of the quickstart's stories stage with SmolLM2 (full fine-tuning)."""
    stories = next(s for s in _quickstart("tiny").stages if s.name == STORIES).model_dump(mode="json")
    stories.update(budget=64, eval_episodes=8)
    agent = {"kind": "lm", "model": MODEL, "list_options": True, "n_steps": 8, "n_epochs": 2, "lr_lm": 1e-5}
    text = {
        "extends": str(ROOT / "configs" / "quickstart.yaml"),
        "name": "bench-pretrained-rss",
        "agent": agent,
        "curriculum": {"chunk_steps": 64, "review_fraction": 0.0},
        "tracking": {"wandb": "off"},
        "stages": [stories],
    }
    with tempfile.TemporaryDirectory(prefix="bench-pretrained-") as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(json.dumps(text), encoding="utf-8")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
        cmd = [
            sys.executable,
            "-m",
            "upbringing.curriculum.cli",
            "train",
            str(cfg),
            "--run-dir",
            f"{tmp}/run",
            "--quiet",
        ]
        load_start = os.getloadavg()[0]
        start = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=timeout_s)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"training did not finish within {timeout_s:.0f} s (machine load?)") from err
        seconds = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if proc.returncode != 0:
            raise RuntimeError(f"training failed: {proc.stderr.strip().splitlines()[-1:]}")
        if peak_kb <= before:  # ru_maxrss is the largest child so far: an earlier, larger child would hide this one
            raise RuntimeError("an earlier child process used more memory: run the rss part first or alone")
        train = [
            row["metrics"]
            for row in map(json.loads, (Path(tmp) / "run" / "events.jsonl").read_text().splitlines())
            if row["kind"] == "metrics" and "train/micro_batch_size" in row["metrics"]
        ]
    return {
        "stories_peak_rss_gb": round(peak_kb / 1024**2, 2),
        "stories_seconds": round(seconds, 1),
        "micro_batch_size": [m["train/micro_batch_size"] for m in train],
        "minibatch_steps": [m["train/minibatch_steps"] for m in train],
        "load_average_1min": [round(load_start, 1), round(os.getloadavg()[0], 1)],
    }


# ------------------------------------------------------------------------------------------------------------ mfu
def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` fp32 matmul FLOP/s on the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def forward_flops(model: Any, packed: Any) -> float:
    """Model FLOPs of one packed forward (see the module docstring)."""
    cfg = model.config
    embed = model.get_input_embeddings().weight.numel()
    dense = sum(p.numel() for p in model.parameters()) - embed
    seg = packed.segment
    real = int((seg >= 0).sum())
    # Each prompt token sees the tokens before it; a tree token sees the prompt and its ancestors: about its position.
    context = float((packed.position_ids.float() + 1)[seg >= 0].sum())
    attention = 4 * cfg.hidden_size * cfg.num_hidden_layers * context
    head = 2 * cfg.hidden_size * cfg.vocab_size * int(packed.pred_row.numel())
    return 2 * dense * real + attention + head


def part_mfu() -> dict[str, Any]:
    """Acting and update FLOP/s of SmolLM2 against the measured matmul throughput, on 1 and 2 threads."""
    from upbringing.agents.lm import LMConfig
    from upbringing.agents.lm.memory import GB, static_bytes
    from upbringing.agents.lm.policy import CausalLMPolicy
    from upbringing.agents.lm.ppo import PPOTrainer
    from upbringing.agents.lm.scoring import pack

    policy = CausalLMPolicy(LMConfig(model=MODEL, device="cpu"), seed=0)
    run = None
    with tempfile.TemporaryDirectory() as tmp:
        run = _run(_quickstart("tiny"), Path(tmp))
        factory = run.factory(_stage(run, STORIES), 0)
        infos = []
        for seed in range(8):
            env = factory("train")
            infos.append(env.reset(seed=seed)[1])
            env.close()
    queries = [policy.prompts.query(info) for info in infos]
    packed = pack(policy.joint, queries, pad_id=policy.pad_id, max_prompt_tokens=policy.config.max_prompt_tokens)
    flops = forward_flops(policy.lm, packed)
    out: dict[str, Any] = {"act_tokens": int((packed.segment >= 0).sum()), "act_width": int(packed.segment.shape[1])}
    # On a shared machine other processes' threads take cores from the measured ones: the figures mean something
    # only beside the load they were measured under.
    out["load_average_1min_start"] = round(os.getloadavg()[0], 1)
    trainer = PPOTrainer(policy, policy.config)
    out["micro_batches_64"] = [len(p) for p in trainer._micro_batches(np.arange(64), queries * 8)]
    out["static_gb"] = round(static_bytes(policy.lm, trainer.params) / GB, 2)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            peak = matmul_flops()
            with torch.no_grad():
                policy.evaluate(queries)
                start = time.perf_counter()
                for _ in range(3):
                    policy.evaluate(queries)
                act = 3 * flops / (time.perf_counter() - start)
            micro = queries[:4]
            micro_packed = pack(policy.joint, micro, pad_id=policy.pad_id)
            start = time.perf_counter()
            for _ in range(2):
                out_ = policy.evaluate(micro)
                loss = out_.log_probs[torch.isfinite(out_.log_probs)].sum() + out_.values.sum()
                loss.backward()
                policy.zero_grad(set_to_none=True)
            update = 2 * 3 * forward_flops(policy.lm, micro_packed) / (time.perf_counter() - start)
            out.update(
                {
                    f"matmul_gflops_t{threads}": round(peak / 1e9, 1),
                    f"act_gflops_t{threads}": round(act / 1e9, 1),
                    f"act_mfu_t{threads}": round(act / peak, 3),
                    f"update_gflops_t{threads}": round(update / 1e9, 1),
                    f"update_mfu_t{threads}": round(update / peak, 3),
                }
            )
    finally:
        torch.set_num_threads(before)
    out["load_average_1min_end"] = round(os.getloadavg()[0], 1)
    return out


# ------------------------------------------------------------------------------------------------------- zeroshot
def _row(run: Run, episodes: int) -> dict[str, Any]:
    stories = heldout(run, STORIES, episodes)
    pd = heldout(run, PD, episodes)
    permanence = heldout(run, PERMANENCE, episodes)
    return {
        "stories_success": stories["success_rate"],
        "stories_compliance": (stories.get("compliance") or {}).get("overall"),
        "pd_return": pd["return"],
        "permanence_success": permanence["success_rate"],
    }


def part_zeroshot(episodes: int, only: list[str] | None = None) -> dict[str, Any]:
    """Untrained tiny and SmolLM2 agents on held-out episodes of three quickstart stages (``only``: these rows)."""
    rows = {}
    settings: dict[str, tuple[str, dict[str, Any]]] = {
        "tiny": ("tiny", {}),
        "smollm2": (MODEL, {"list_options": True}),
        "smollm2_plain_nolist": (MODEL, {"list_options": False, "prompt_format": "plain"}),
    }
    for label, (model, agent) in settings.items():
        if only and label not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            rows[label] = _row(_run(_quickstart(model, **agent), Path(tmp)), episodes)
        print(f"zero-shot {label}: {rows[label]}", file=sys.stderr, flush=True)
    return {"episodes": episodes, **rows}


# ----------------------------------------------------------------------------------------------------------- lora
def part_lora(minutes: float, episodes: int, seeds: list[int], n_steps: int = 8) -> dict[str, Any]:
    """SmolLM2 + LoRA trained by PPO on the stories stage for at most ``minutes`` per seed, then evaluated held-out."""
    runs = [_lora_seed(minutes, episodes, seed, n_steps) for seed in seeds]
    out: dict[str, Any] = {"episodes": episodes, "n_steps": n_steps, "minutes_per_seed": minutes, "runs": runs}
    for key in ("stories_success", "stories_compliance"):
        values = [r[key] for r in runs if r[key] is not None]
        out[f"mean_{key}"] = round(float(np.mean(values)), 4) if values else None
    return out


def _lora_seed(minutes: float, episodes: int, seed: int, n_steps: int) -> dict[str, Any]:
    from upbringing.curriculum.stage_envs import make_vec_env

    agent = {"list_options": True, "n_steps": n_steps, "lr_lm": 2e-4, "lora.enabled": True, "n_epochs": 2}
    config = _quickstart(MODEL, **agent).model_copy(update={"seed": seed})
    with tempfile.TemporaryDirectory() as tmp:
        run = _run(config, Path(tmp))
        i = _stage(run, STORIES)
        learner = run.stage_agent(i)
        start = time.perf_counter()
        per_update = config.curriculum.n_envs * config.agent.n_steps
        chunk = 0
        history: list[dict[str, float | None]] = []
        while True:
            venv = make_vec_env(run.factory(i, 0), config.curriculum, "dummy")
            venv.seed(1000 + chunk)
            metrics = learner.learn(venv, per_update)
            venv.close()
            chunk += 1
            history.append(
                {k: metrics.get(f"train/{k}") for k in ("success_rate", "approx_kl", "clip_fraction", "policy_loss")}
            )
            print(f"lora seed {seed} update {chunk}: {history[-1]}", file=sys.stderr, flush=True)
            elapsed = time.perf_counter() - start
            if elapsed + elapsed / chunk > minutes * 60:  # whole updates only: stop before one would overrun
                break
        seconds = time.perf_counter() - start
        result = heldout(run, STORIES, episodes)
    return {
        "seed": seed,
        "env_steps": chunk * per_update,
        "updates": chunk,
        "seconds": round(seconds, 1),
        "train_per_update": history,
        "stories_success": result["success_rate"],
        "stories_compliance": (result.get("compliance") or {}).get("overall"),
    }


# ----------------------------------------------------------------------------------------------------------- main
def _save(out: Path | None, figures: dict[str, Any]) -> None:
    if out is None:
        return
    data = json.loads(out.read_text()) if out.exists() else {"results": {}}
    data.setdefault("results", {})["pretrained"] = figures
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float) + "\n", encoding="utf-8")
    os.replace(tmp, out)


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks pretrained")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--parts", default="rss,mfu,zeroshot,lora")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--lora-minutes", type=float, default=15.0, help="lora: wall-time bound per seed")
    parser.add_argument("--lora-seeds", default="0", help="lora: comma-separated seeds")
    parser.add_argument("--lora-steps", type=int, default=8, help="lora: env steps per env per PPO update")
    parser.add_argument("--rows", help="zeroshot: only these rows (comma-separated; default: all)")
    parser.add_argument(
        "--out", type=Path, help="results file to update (default with --json: benchmarks/results.json)"
    )
    args = parser.parse_args(argv)
    from upbringing.agents.lm.models import is_pulled

    if not is_pulled(MODEL):
        raise SystemExit(f"error: run `upbringing models pull {MODEL}` first")
    out = args.out or (DEFAULT_OUT if args.json else None)
    previous = json.loads(out.read_text()).get("results", {}).get("pretrained", {}) if out and out.exists() else {}
    figures: dict[str, Any] = dict(previous)
    figures["machine"] = {"cpu_count": os.cpu_count(), "torch": torch.__version__, "gpu": torch.cuda.is_available()}
    parts = {
        "rss": lambda: part_rss(),
        "mfu": lambda: part_mfu(),
        "zeroshot": lambda: part_zeroshot(args.episodes, args.rows.split(",") if args.rows else None),
        "lora": lambda: part_lora(
            args.lora_minutes, args.episodes, [int(x) for x in args.lora_seeds.split(",")], args.lora_steps
        ),
    }
    for name in args.parts.split(","):
        start = time.perf_counter()
        figures[name] = parts[name]()
        figures[name]["part_seconds"] = round(time.perf_counter() - start, 1)
        print(f"{name}: {figures[name]}", file=sys.stderr, flush=True)
        _save(out, figures)
    return figures
