"""A real pretrained model (SmolLM2-135M-Instruct, pulled offline) against the tiny default: memory, speed, zero-shot
behaviour and a short LoRA PPO run.

``python -m benchmarks pretrained [--json] [--parts rss,mfu,zeroshot,lora] [--episodes 50] [--out PATH]
[--lora-stage stories] [--lora-prompt plain-nolist] [--lora-minutes 22] [--lora-max-updates N] [--lora-seeds 0,1,2]
[--lora-steps 8] [--lora-lr 1e-3] [--lora-epochs 2] [--lora-minibatch 16]``

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
- ``lora``: SmolLM2 with LoRA (r 8) trained by PPO on one quickstart stage (``--lora-stage``, default ``stories``;
  or ``reciprocity``, the PD against tit-for-tat, or ``permanence``) with the stage's constitution- and
  feedback-shaped rewards (the simulated parent's labels fit the reward model after each update, as in a run), 8
  envs, ``--lora-steps`` env steps per env per update, ``--lora-epochs`` epochs of minibatches of
  ``--lora-minibatch`` samples at ``--lora-lr``, for at most ``--lora-minutes`` of wall time per seed (whole updates;
  ``--lora-max-updates`` bounds the count too). ``--lora-prompt``: ``plain-nolist`` (default: the quickstart's
  ``list_options: false`` with the plain format, where zero-shot SmolLM2 is poor: stories compliance about 0.5, it
  always defects in the PD) or ``listed`` (options listed, chat prompt: zero-shot stories compliance already 0.94,
  nothing left for a short run to show). Each seed plays its ``--episodes`` held-out episodes before training (LoRA
  starts as the identity, so this is the zero-shot model) and after, on the same episodes. Per seed in ``runs``:
  ``before`` / ``after`` (``success``, ``compliance``, ``return``), ``env_steps``, ``updates``, ``seconds``,
  ``load_average_1min`` (before and after), ``train_per_update`` (training success rate, episode return, constitution
  cost, approx KL, clip fraction, policy loss, epochs completed, seconds since training began). Over seeds, for
  ``success``, ``compliance`` and ``return``: ``before``, ``after`` and ``gain`` (after - before paired by seed) as
  mean with a 95% Student-t interval (:func:`upbringing.curriculum.compare.mean_ci`), and
  ``after_minus_before_welch`` (:func:`~upbringing.curriculum.compare.difference_ci`). ``settings``: what was run.
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
from dataclasses import asdict, dataclass
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
# Prompt settings by name: ``plain-nolist`` is the quickstart's (``list_options: false``, plain text), where zero-shot
# SmolLM2 is poor on stories compliance and always defects in the PD; ``listed`` is the agent's default (options
# listed, chat prompt), where it is already good on stories.
LORA_PROMPTS: dict[str, dict[str, Any]] = {
    "plain-nolist": {"list_options": False, "prompt_format": "plain"},
    "listed": {"list_options": True, "prompt_format": "auto"},
}
LORA_STAGES = (STORIES, PD, PERMANENCE)
TRAIN_KEYS = ("success_rate", "episode_return", "cost", "approx_kl", "clip_fraction", "policy_loss", "epochs_completed")


@dataclass(frozen=True)
class LoraSettings:
    """What the ``lora`` part trains: stage, prompt, PPO settings and the wall-time bound per seed."""

    stage: str = STORIES
    prompt: str = "plain-nolist"
    minutes: float = 22.0
    n_steps: int = 8
    lr: float = 1e-3
    epochs: int = 2
    minibatch: int = 16
    max_updates: int | None = None

    def agent(self) -> dict[str, Any]:
        """Agent overrides of the quickstart config."""
        return {
            **LORA_PROMPTS[self.prompt],
            "lora.enabled": True,
            "n_steps": self.n_steps,
            "lr_lm": self.lr,
            "n_epochs": self.epochs,
            "minibatch_size": self.minibatch,
        }


def _scores(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "success": result["success_rate"],
        "compliance": (result.get("compliance") or {}).get("overall"),
        "return": round(float(result["return"]), 4),
    }


def part_lora(settings: LoraSettings, episodes: int, seeds: list[int]) -> dict[str, Any]:
    """SmolLM2 + LoRA trained by PPO on ``settings.stage`` for at most ``settings.minutes`` per seed; each seed's
    held-out episodes are played before (zero-shot) and after training, and both are summarised over seeds."""
    return summarize_lora([_lora_seed(settings, episodes, seed) for seed in seeds], settings, episodes)


def summarize_lora(runs: list[dict[str, Any]], settings: LoraSettings, episodes: int) -> dict[str, Any]:
    """Per-seed runs with the mean and 95% Student-t interval over seeds of each held-out figure before and after
    training and of its gain (after - before, paired by seed), and Welch's interval of the unpaired difference."""
    from upbringing.curriculum.compare import difference_ci, mean_ci

    out: dict[str, Any] = {"episodes": episodes, "settings": asdict(settings), "runs": runs}
    for key in ("success", "compliance", "return"):
        before = [r["before"][key] for r in runs]
        after = [r["after"][key] for r in runs]
        gain = [a - b if a is not None and b is not None else None for a, b in zip(after, before)]
        out[key] = {"before": mean_ci(before), "after": mean_ci(after), "gain": mean_ci(gain)}
        out[key]["after_minus_before_welch"] = difference_ci(after, before)
    return out


def _lora_seed(settings: LoraSettings, episodes: int, seed: int) -> dict[str, Any]:
    from upbringing.curriculum.stage_envs import make_vec_env

    config = _quickstart(MODEL, **settings.agent()).model_copy(update={"seed": seed})
    with tempfile.TemporaryDirectory() as tmp:
        run = _run(config, Path(tmp))
        i = _stage(run, settings.stage)
        learner = run.stage_agent(i)
        # LoRA's B matrices start at zero, so the untrained agent acts as the base model: this is its zero-shot score
        # on the very episodes it is measured on after training.
        load = [round(os.getloadavg()[0], 1)]
        before = _scores(heldout(run, settings.stage, episodes))
        print(f"lora seed {seed} before: {before}", file=sys.stderr, flush=True)
        loop = run.stages[i].feedback
        start = time.perf_counter()
        per_update = config.curriculum.n_envs * config.agent.n_steps
        chunk = 0
        history: list[dict[str, float | None]] = []
        while True:
            venv = make_vec_env(run.factory(i, 0), config.curriculum, "dummy")
            venv.seed(100_000 * seed + 1000 + chunk)  # each seed trains on its own episodes
            if loop is not None:  # the simulated parent's labels fit the reward model between updates, as in a run
                loop.level = 0
            metrics = learner.learn(loop.recorder(venv) if loop is not None else venv, per_update)
            venv.close()
            if loop is not None:
                metrics.update(loop.end_chunk())
            chunk += 1
            row: dict[str, float | None] = {k: metrics.get(f"train/{k}") for k in TRAIN_KEYS}
            row["seconds"] = round(time.perf_counter() - start, 1)
            history.append(row)
            print(f"lora seed {seed} update {chunk}: {row}", file=sys.stderr, flush=True)
            elapsed = time.perf_counter() - start
            if settings.max_updates is not None and chunk >= settings.max_updates:
                break
            if elapsed + elapsed / chunk > settings.minutes * 60:  # whole updates only: stop before one would overrun
                break
        seconds = time.perf_counter() - start
        after = _scores(heldout(run, settings.stage, episodes))
        load.append(round(os.getloadavg()[0], 1))
        print(f"lora seed {seed} after: {after}", file=sys.stderr, flush=True)
    return {
        "seed": seed,
        "env_steps": chunk * per_update,
        "updates": chunk,
        "seconds": round(seconds, 1),
        "load_average_1min": load,
        "before": before,
        "after": after,
        "train_per_update": history,
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


def lora_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[LoraSettings, list[int]]:
    """The ``lora`` part's settings and seeds from parsed arguments; a bad value is one argparse error line."""
    try:
        seeds = [int(x) for x in args.lora_seeds.split(",")]
    except ValueError:
        parser.error(f"--lora-seeds: expected comma-separated integers, got {args.lora_seeds!r}")
    for name in ("lora_minutes", "lora_lr"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')}: expected a positive number, got {getattr(args, name)}")
    for name in ("lora_steps", "lora_epochs", "lora_minibatch", "lora_max_updates"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer, got {value}")
    settings = LoraSettings(
        stage=args.lora_stage,
        prompt=args.lora_prompt,
        minutes=args.lora_minutes,
        n_steps=args.lora_steps,
        lr=args.lora_lr,
        epochs=args.lora_epochs,
        minibatch=args.lora_minibatch,
        max_updates=args.lora_max_updates,
    )
    return settings, seeds


def parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks pretrained")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--parts", default="rss,mfu,zeroshot,lora")
    parser.add_argument("--episodes", type=int, default=50)
    d = LoraSettings()
    parser.add_argument("--lora-stage", choices=LORA_STAGES, default=d.stage, help="lora: quickstart stage to train")
    parser.add_argument("--lora-prompt", choices=sorted(LORA_PROMPTS), default=d.prompt, help="lora: prompt settings")
    parser.add_argument("--lora-minutes", type=float, default=d.minutes, help="lora: wall-time bound per seed")
    parser.add_argument("--lora-max-updates", type=int, default=None, help="lora: at most this many PPO updates")
    parser.add_argument("--lora-seeds", default="0,1,2", help="lora: comma-separated seeds")
    parser.add_argument("--lora-steps", type=int, default=d.n_steps, help="lora: env steps per env per PPO update")
    parser.add_argument("--lora-lr", type=float, default=d.lr, help="lora: learning rate of the adapters")
    parser.add_argument("--lora-epochs", type=int, default=d.epochs, help="lora: PPO epochs per update")
    parser.add_argument("--lora-minibatch", type=int, default=d.minibatch, help="lora: samples per optimizer step")
    parser.add_argument("--rows", help="zeroshot: only these rows (comma-separated; default: all)")
    parser.add_argument(
        "--out", type=Path, help="results file to update (default with --json: benchmarks/results.json)"
    )
    return parser


def main(argv: list[str]) -> dict[str, Any]:
    parser_ = parser()
    args = parser_.parse_args(argv)
    unknown = sorted(set(args.parts.split(",")) - {"rss", "mfu", "zeroshot", "lora"})
    if unknown:
        parser_.error(f"--parts: unknown part(s) {', '.join(unknown)}; expected some of rss,mfu,zeroshot,lora")
    lora, seeds = lora_settings(parser_, args)
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
        "lora": lambda: part_lora(lora, args.episodes, seeds),
    }
    for name in args.parts.split(","):
        start = time.perf_counter()
        figures[name] = parts[name]()
        figures[name]["part_seconds"] = round(time.perf_counter() - start, 1)
        print(f"{name}: {figures[name]}", file=sys.stderr, flush=True)
        _save(out, figures)
    return figures
