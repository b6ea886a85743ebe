"""Does the curriculum help? The sequential curriculum against the direct control on a config's last stage.

``python -m benchmarks curriculum [--json] [--config PATH] [--seeds N] [--runs-dir DIR] [key=value ...]``

Trains the config (default ``configs/quickstart_sb3.yaml``) with the ``sequential`` teacher and with the ``direct``
control (only the last stage's hardest level, with the whole curriculum's budget) for each seed, then compares them
on the last stage (:mod:`upbringing.curriculum.compare`): steps on the stage to the promotion threshold (first held-out
evaluation at or above it) and to mastery (the promotion rule's verdict), total env steps to threshold (the
curriculum's earlier stages included), jumpstart, asymptotic performance, area under the curve and transfer ratio,
with 95% intervals over seeds.

Runs are kept in ``--runs-dir`` (default ``runs/benchmark-curriculum``) as ``<teacher>-s<seed>``; a finished run
there (it has a ``summary.json``) is reused rather than trained again, so the figures can be recomputed cheaply.
Extra ``key=value`` arguments override the config for every run (e.g. a shortened variant).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEACHERS = ("sequential", "direct")


def train_runs(config: Path, seeds: list[int], runs_dir: Path, overrides: list[str]) -> tuple[list[Path], dict]:
    """Train (or reuse) one run per teacher and seed; return the run folders and the seconds each training took."""
    from upbringing.curriculum.checks import load_config
    from upbringing.curriculum.runner import SUMMARY_FILE, train

    runs, seconds = [], {}
    for seed in seeds:
        for teacher in TEACHERS:
            run_dir = runs_dir / f"{teacher}-s{seed}"
            runs.append(run_dir)
            if (run_dir / SUMMARY_FILE).exists():
                print(f"  reusing {run_dir}")
                continue
            if run_dir.exists():  # an interrupted earlier attempt: start it again
                shutil.rmtree(run_dir)
            keys = [f"seed={seed}", f"curriculum.teacher={teacher}", "tracking.wandb=off", *overrides]
            cfg = load_config(config, keys)
            start = time.perf_counter()
            train(cfg, run_dir, progress=False)
            seconds[run_dir.name] = round(time.perf_counter() - start, 1)
            print(f"  trained {run_dir} in {seconds[run_dir.name]:.0f} s")
    return runs, seconds


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks curriculum")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    parser.add_argument("--config", default=str(ROOT / "configs" / "quickstart_sb3.yaml"), help="the run config")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per teacher")
    parser.add_argument("--runs-dir", default="runs/benchmark-curriculum", help="where the runs are kept")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every run")
    args = parser.parse_args(argv)

    from upbringing.curriculum.compare import compare_runs, format_comparison

    print(f"curriculum benchmark: {args.config}, sequential vs direct, seeds 0..{args.seeds - 1}")
    runs, seconds = train_runs(Path(args.config), list(range(args.seeds)), Path(args.runs_dir), args.overrides)
    result = compare_runs(runs)
    print(format_comparison(result))
    seq, ctl = result["groups"]["sequential"], result["groups"]["direct"]
    versus = result["versus_reference"]["sequential"]
    figures: dict[str, Any] = {"stage": result["stage"], "threshold": result["threshold"], "seeds": args.seeds}
    for label, g in (("sequential", seq), ("direct", ctl)):
        for metric in ("time_to_threshold", "steps_to_mastery", "total_time_to_threshold", "initial", "asymptotic"):
            figures[f"{label}_{metric}"] = g[metric]["mean"]
            figures[f"{label}_{metric}_ci"] = [g[metric]["low"], g[metric]["high"]]
            figures[f"{label}_{metric}_per_seed"] = g["values"][metric]
        figures[f"{label}_auc"] = g["auc"]["mean"]
    for metric in ("jumpstart", "time_to_threshold", "steps_to_mastery", "total_time_to_threshold", "auc"):
        figures[f"difference_{metric}"] = versus[metric]["difference"]
        figures[f"difference_{metric}_ci"] = [versus[metric]["low"], versus[metric]["high"]]
    figures["transfer_ratio"] = versus["transfer_ratio"]["ratio"]
    figures["transfer_ratio_ci"] = [versus["transfer_ratio"]["low"], versus["transfer_ratio"]["high"]]
    figures["horizon"] = result["horizon"]
    figures["train_seconds"] = seconds
    return figures
