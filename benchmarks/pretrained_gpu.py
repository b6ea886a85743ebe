"""SmolLM2-135M-Instruct on a GPU: acting and update throughput with model FLOPs utilisation in bfloat16 and float32,
exact scoring in bfloat16 against float32, and short LoRA and full fine-tuning PPO runs on the stories stage.

``python -m benchmarks pretrained_gpu [--json] [--device cuda] [--quick] [--model NAME|PATH] [--random-weights]
[--dtypes bfloat16,float32] [--parts throughput,exact,ppo] [--ppo-envs 32] [--ppo-steps 8] [--ppo-updates 4]
[--out PATH]``; on a GPU machine ``benchmarks/gpu.sh`` runs it and writes ``$OUT/pretrained_gpu.json``.

Nothing is installed or downloaded at run time. The model is a pulled name or a folder. Its weights (517 MB in
float32) may not travel to a machine that takes only a small copy of the checkout: then carry its ``config.json``
and tokenizer files (3.5 MB) and pass ``--random-weights``, which builds the same architecture with seeded random
weights. Throughput, memory and MFU do not depend on the weights' values; the PPO runs then measure speed, not
learning, and ``weights`` in the figures says which was used. ``torch.cuda.is_available()`` is checked first: without
it (a CPU-only torch build, no driver) the figures say so (``cuda_available: false`` with the reason) and nothing
else runs, unless ``--device cpu`` asks for the CPU (with ``--quick``: a tiny end-to-end check of the same code).

Figures (``machine``: python, torch and its CUDA version, the device's name and memory; ``weights``; ``model``):

- ``throughput`` per dtype (``bfloat16``: autocast, as ``agent.dtype: bfloat16``; ``float32``: TF32 off):
  ``matmul_tflops`` (square matmul of that dtype, best of 5), ``act_queries_per_s`` and ``act_tflops`` / ``act_mfu``
  of one acting forward of ``--act-batch`` stories prompts (no grad), ``update_samples_per_s`` and ``update_tflops``
  / ``update_mfu`` of forward + backward of ``--update-batch`` samples (full fine-tuning; backward counted as 2x
  forward), and ``peak_gb`` (``torch.cuda.max_memory_allocated``). Model FLOPs as in :mod:`benchmarks.pretrained`.
- ``exact``: on ``--act-batch`` stories prompts, the largest difference (nats) between bfloat16-autocast and float32
  action log-probabilities of the packed scorer, and between the float32 packed scorer and the unbatched reference
  ``model(prompt + action)`` (:func:`upbringing.agents.lm.scoring.score_naive`) on the first 8 prompts.
- ``ppo``: ``lora`` (r 8, ``lr_lm`` 2e-4) and ``full`` (``lr_lm`` 1e-5) PPO on the quickstart's stories stage with
  its constitution- and feedback-shaped rewards, options listed, ``--ppo-envs`` envs x ``--ppo-steps`` steps per
  update, ``--ppo-updates`` updates in bfloat16 on a GPU (float32 on a CPU): ``env_steps_per_s`` (acting and updating
  together), ``seconds``, ``peak_gb``, and the last update's ``approx_kl``, ``clip_fraction`` and training
  ``success_rate``.

``--quick`` shrinks every count (4 prompts, 2-sample updates, 256-wide matmuls, one PPO update of 2 envs x 2 steps)
so the whole path runs in minutes on a CPU.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
# What the benchmark imports beyond the standard library (a device image may lack some: carry them as wheels)
NEEDS = ("numpy", "torch", "transformers", "peft", "pydantic", "yaml", "scipy", "gymnasium", "pymunk", "safetensors")
DTYPES = ("bfloat16", "float32")
PARTS = ("throughput", "exact", "ppo")


def parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks pretrained_gpu")
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny counts: a check that every part runs end to end")
    p.add_argument("--model", default=MODEL, help="a pulled model's name or a model folder")
    p.add_argument("--random-weights", action="store_true", help="the model's architecture with random weights")
    p.add_argument("--dtypes", default=",".join(DTYPES), help="throughput: comma-separated, of bfloat16,float32")
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated, of throughput,exact,ppo")
    p.add_argument("--act-batch", type=int, default=64, help="prompts per acting forward")
    p.add_argument("--update-batch", type=int, default=16, help="samples per forward + backward")
    p.add_argument("--ppo-envs", type=int, default=32)
    p.add_argument("--ppo-steps", type=int, default=8, help="env steps per env per PPO update")
    p.add_argument("--ppo-updates", type=int, default=4)
    p.add_argument("--out", type=Path, help="JSON file to write the figures to (after each part)")
    return p


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Validate and, with ``--quick``, shrink the counts; a bad value is one argparse error line."""
    for flag, given, allowed in (("--dtypes", args.dtypes, DTYPES), ("--parts", args.parts, PARTS)):
        bad = [x for x in given.split(",") if x not in allowed]
        if bad:
            p.error(f"{flag}: unknown {', '.join(bad)}; expected some of {','.join(allowed)}")
    for name in ("act_batch", "update_batch", "ppo_envs", "ppo_steps", "ppo_updates"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(args, name)}")
    if args.quick:
        args.act_batch, args.update_batch, args.ppo_envs, args.ppo_steps, args.ppo_updates = 4, 2, 2, 2, 1
    args.matmul_n = 256 if args.quick else 8192
    args.repeats = 1 if args.quick else 5
    return args


def environment(device: str) -> dict[str, Any]:
    """Python, torch, CUDA and the device; ``missing``: needed modules that do not import; ``error``: why not."""
    info: dict[str, Any] = {"python": platform.python_version(), "cpu_count": os.cpu_count()}
    missing = []
    for name in NEEDS:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    info["missing"] = missing
    if "torch" in missing:
        info["error"] = "torch does not import"
        return info
    import torch

    info.update(torch=torch.__version__, torch_cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
    if info["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 1024**3, 1))
    if missing:
        info["error"] = f"missing Python packages: {', '.join(missing)} (carry them as wheels; see benchmarks/gpu.sh)"
    elif device == "cuda" and not info["cuda_available"]:
        why = "a CPU-only torch build" if torch.version.cuda is None else "no usable GPU or driver"
        info["error"] = f"torch.cuda.is_available() is false: {why} (torch {torch.__version__})"
    return info


def model_path(name: str, random_weights: bool, tmp: Path) -> str:
    """The model folder to load: ``name`` itself, or a copy of its architecture with seeded random weights."""
    from upbringing.agents.lm.models import is_pulled, model_dir

    folder = model_dir(name) if is_pulled(name) else Path(name)
    if not random_weights:
        return str(folder)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
    model.save_pretrained(tmp / "model")
    AutoTokenizer.from_pretrained(folder).save_pretrained(tmp / "model")
    return str(tmp / "model")


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _timed(device: str, repeats: int, fn: Any) -> float:
    """Best wall time of ``repeats`` calls of ``fn`` after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def _peak_reset(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 1024**3, 2) if device == "cuda" else None


def stories_queries(policy: Any, n: int) -> list[Any]:
    """``n`` queries from the quickstart's stories stage (train split, seeds 0..n-1)."""
    from benchmarks.pretrained import STORIES, _quickstart, _run, _stage

    with tempfile.TemporaryDirectory() as tmp:
        run = _run(_quickstart("tiny"), Path(tmp))
        factory = run.factory(_stage(run, STORIES), 0)
        queries = []
        for seed in range(n):
            env = factory("train")
            queries.append(policy.prompts.query(env.reset(seed=seed)[1]))
            env.close()
    return queries


def part_throughput(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Acting and update speed and MFU of the model per dtype (see the module docstring)."""
    import torch
    from upbringing.agents.lm import LMConfig
    from upbringing.agents.lm.policy import CausalLMPolicy
    from upbringing.agents.lm.scoring import pack

    from benchmarks.pretrained import forward_flops

    out: dict[str, Any] = {}
    for dtype in args.dtypes.split(","):
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32 (TF32 would be a third dtype)
        policy = CausalLMPolicy(LMConfig(model=model, device=args.device, dtype=dtype), seed=0)
        queries = stories_queries(policy, args.act_batch)
        n = args.matmul_n
        a = torch.randn(n, n, device=args.device, dtype=getattr(torch, dtype))
        peak = 2 * n**3 / _timed(args.device, args.repeats, lambda a=a: torch.mm(a, a))
        del a
        act_flops = forward_flops(policy.lm, pack(policy.joint, queries, pad_id=policy.pad_id))
        _peak_reset(args.device)
        with torch.no_grad():
            act = _timed(args.device, args.repeats, lambda p=policy, q=queries: p.evaluate(q))
        micro = queries[: args.update_batch]

        def step(micro: list[Any] = micro, policy: Any = policy) -> None:
            o = policy.evaluate(micro)
            (o.log_probs[torch.isfinite(o.log_probs)].sum() + o.values.sum()).backward()
            policy.zero_grad(set_to_none=True)

        update = _timed(args.device, args.repeats, step)
        update_flops = 3 * forward_flops(policy.lm, pack(policy.joint, micro, pad_id=policy.pad_id))
        out[dtype] = {
            "matmul_tflops": round(peak / 1e12, 3),
            "act_queries_per_s": round(len(queries) / act, 1),
            "act_tflops": round(act_flops / act / 1e12, 3),
            "act_mfu": round(act_flops / act / peak, 3),
            "update_samples_per_s": round(len(micro) / update, 1),
            "update_tflops": round(update_flops / update / 1e12, 3),
            "update_mfu": round(update_flops / update / peak, 3),
            "peak_gb": _peak_gb(args.device),
        }
        print(f"throughput {dtype}: {out[dtype]}", file=sys.stderr, flush=True)
    return {"act_batch": args.act_batch, "update_batch": args.update_batch, **out}


def part_exact(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """bfloat16 against float32 scores, and float32 packed scores against the unbatched reference."""
    import torch
    from upbringing.agents.lm import LMConfig
    from upbringing.agents.lm.policy import CausalLMPolicy
    from upbringing.agents.lm.scoring import score_naive

    policy = CausalLMPolicy(LMConfig(model=model, device=args.device, dtype="float32"), seed=0)
    queries = stories_queries(policy, args.act_batch)
    with torch.no_grad():
        fp32 = policy.evaluate(queries).scores.float()  # summed token log-probabilities
        policy.amp_dtype = torch.bfloat16  # the same weights, scored under bfloat16 autocast
        bf16 = policy.evaluate(queries).scores.float()
        policy.amp_dtype = None
        naive = max(
            float((score_naive(policy.lm, policy.joint, q).float() - fp32[i, q.valid]).abs().max())
            for i, q in enumerate(queries[:8])
        )
    finite = torch.isfinite(fp32)
    return {
        "bf16_vs_fp32_max_nats": round(float((bf16 - fp32)[finite].abs().max()), 5),
        "bf16_vs_fp32_mean_nats": round(float((bf16 - fp32)[finite].abs().mean()), 5),
        "fp32_packed_vs_reference_max_nats": naive,
        "prompts": len(queries),
    }


def part_ppo(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Short LoRA and full fine-tuning PPO runs on the stories stage (speed and memory)."""
    from upbringing.curriculum.checks import load_config
    from upbringing.curriculum.stage_envs import make_vec_env

    from benchmarks.pretrained import STORIES, _run, _stage

    dtype = "bfloat16" if args.device == "cuda" else "float32"
    out: dict[str, Any] = {"dtype": dtype, "envs": args.ppo_envs, "n_steps": args.ppo_steps}
    for mode, agent in (("lora", ["agent.lora.enabled=true", "agent.lr_lm=2e-4"]), ("full", ["agent.lr_lm=1e-5"])):
        overrides = [
            f"agent.model={model}",
            f"agent.device={args.device}",
            f"agent.dtype={dtype}",
            "agent.list_options=true",
            f"agent.n_steps={args.ppo_steps}",
            f"curriculum.n_envs={args.ppo_envs}",
            *agent,
        ]
        config = load_config(ROOT / "configs" / "quickstart.yaml", overrides)
        with tempfile.TemporaryDirectory() as tmp:
            run = _run(config, Path(tmp))
            i = _stage(run, STORIES)
            _peak_reset(args.device)
            venv = make_vec_env(run.factory(i, 0), config.curriculum, "dummy")
            venv.seed(0)
            start = time.perf_counter()
            metrics = run.stage_agent(i).learn(venv, args.ppo_envs * args.ppo_steps * args.ppo_updates)
            seconds = time.perf_counter() - start
            venv.close()
        out[mode] = {
            "env_steps_per_s": round(args.ppo_envs * args.ppo_steps * args.ppo_updates / seconds, 2),
            "seconds": round(seconds, 1),
            "peak_gb": _peak_gb(args.device),
            **{k: metrics.get(f"train/{k}") for k in ("approx_kl", "clip_fraction", "success_rate")},
        }
        print(f"ppo {mode}: {out[mode]}", file=sys.stderr, flush=True)
    return out


def _save(out: Path | None, figures: dict[str, Any]) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(figures, indent=1, default=float) + "\n", encoding="utf-8")
        os.replace(tmp, out)


def main(argv: list[str]) -> dict[str, Any]:
    p = parser()
    args = check_args(p, p.parse_args(argv))
    figures: dict[str, Any] = {"machine": environment(args.device), "quick": args.quick, "device": args.device}
    if "error" in figures["machine"]:
        print(f"error: {figures['machine']['error']}", file=sys.stderr)
        _save(args.out, figures)
        return figures
    figures["weights"] = "random (seed 0)" if args.random_weights else "pretrained"
    figures["model"] = args.model
    with tempfile.TemporaryDirectory() as tmp:
        model = model_path(args.model, args.random_weights, Path(tmp))
        parts = {"throughput": part_throughput, "exact": part_exact, "ppo": part_ppo}
        for name in args.parts.split(","):
            start = time.perf_counter()
            figures[name] = parts[name](model, args)
            figures[name]["part_seconds"] = round(time.perf_counter() - start, 1)
            _save(args.out, figures)
    return figures
