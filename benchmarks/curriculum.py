"""Does the curriculum help, and does the agent keep what it learned?

``python -m benchmarks curriculum [--json] [--config PATH] [--teachers T,...] [--seeds N] [--runs-dir DIR]
[--retention-config PATH] [--retention-seeds N] [key=value ...]``

Two parts, each training (or reusing) its runs in ``--runs-dir`` (default ``runs/benchmark-curriculum``); a finished
run there (it has a ``summary.json``) is reused rather than trained again, so the figures can be recomputed cheaply.

**Curriculum benefit.** Trains the target config (default ``configs/curriculum_target.yaml``, SB3 agent) with each
teacher (default ``sequential``, ``learning_progress``, ``plr`` and the ``direct`` control: only the last stage's
hardest level, with the whole budget) for each seed, as ``<teacher>-s<seed>``, and compares them on the last stage
(:mod:`upbringing.curriculum.compare`): steps to the threshold (first held-out evaluation at or above it) on the
stage and in total (a curriculum's earlier stages and levels counted), steps to mastery, jumpstart, asymptote, area
under the curve, with 95% intervals over seeds. ``steps_to_threshold_ratio`` is the best curriculum's mean total
steps to threshold over the control's, with a percentile-bootstrap 95% interval; a run that never reached the
threshold counts with all the steps it trained (a lower bound on its true figure, flagged in ``censored``).

**Retention.** Trains the LM quickstart (``--retention-config``, default ``configs/quickstart.yaml``, whose
``curriculum.retention`` is on) for ``--retention-seeds`` seeds, as ``quickstart/<method>-s<seed>``, and reports each
stage's score at mastery (the retention matrix's diagonal: held-out right after its promotion), its final held-out
score, their ratio, the lowest score after any later stage, and the retention matrix itself.

Extra ``key=value`` arguments override the target config for every run (e.g. a shortened variant).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEACHERS = ("sequential", "learning_progress", "plr", "direct")
CONTROL = "direct"


def train_runs(
    config: Path, teachers: list[str], seeds: list[int], runs_dir: Path, overrides: list[str]
) -> tuple[list[Path], dict[str, float]]:
    """Train (or reuse) one run per teacher and seed; return the run folders and the seconds each training took."""
    from upbringing.curriculum.checks import load_config
    from upbringing.curriculum.launch import train
    from upbringing.curriculum.runner import SUMMARY_FILE

    runs, seconds = [], {}
    for seed in seeds:
        for teacher in teachers:
            run_dir = runs_dir / f"{teacher}-s{seed}"
            runs.append(run_dir)
            if (run_dir / SUMMARY_FILE).exists():
                print(f"  reusing {run_dir}", flush=True)
                continue
            if run_dir.exists():  # an interrupted earlier attempt: start it again
                shutil.rmtree(run_dir)
            keys = [f"seed={seed}", f"curriculum.teacher={teacher}", "tracking.wandb=off", *overrides]
            cfg = load_config(config, keys)
            start = time.perf_counter()
            train(cfg, run_dir, progress=False)
            seconds[run_dir.name] = round(time.perf_counter() - start, 1)
            print(f"  trained {run_dir} in {seconds[run_dir.name]:.0f} s", flush=True)
    return runs, seconds


def total_steps_to_threshold(result: dict[str, Any], group: str) -> tuple[list[float], list[bool]]:
    """Each seed's total env steps to threshold in ``group``; a run that never reached it counts with every step it
    trained (censored: its true figure is at least that)."""
    values, censored = [], []
    runs = [r for r in result["runs"] if r["group"] == group]
    for r, t in zip(runs, result["groups"][group]["values"]["total_time_to_threshold"]):
        if t is None:
            summary = json.loads((Path(r["run_dir"]) / "summary.json").read_text())
            values.append(float(summary["global_step"]))
            censored.append(True)
        else:
            values.append(float(t))
            censored.append(False)
    return values, censored


def benefit(config: Path, teachers: list[str], seeds: int, runs_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """The curriculum-vs-control table on the target and the best curriculum's steps-to-threshold ratio."""
    from upbringing.curriculum.compare import compare_runs, format_comparison, ratio_ci

    runs, seconds = train_runs(config, teachers, list(range(seeds)), runs_dir, overrides)
    result = compare_runs(runs)
    print(format_comparison(result))
    table: dict[str, Any] = {}
    for teacher in teachers:
        g = result["groups"][teacher]
        totals, censored = total_steps_to_threshold(result, teacher)
        table[teacher] = {
            "total_steps_to_threshold_per_seed": totals,
            "censored": censored,
            "stage_steps_to_threshold": g["time_to_threshold"]["mean"],
            "reached": g["reached"],
            "steps_to_mastery_per_seed": g["values"]["steps_to_mastery"],
            "initial": g["initial"]["mean"],
            "asymptotic": g["asymptotic"]["mean"],
            "auc": g["auc"]["mean"],
        }
    ratio: dict[str, Any] = {"mean": None, "low": None, "high": None, "best": None}
    if CONTROL in teachers:
        control, control_censored = total_steps_to_threshold(result, CONTROL)
        curricula = [t for t in teachers if t != CONTROL]
        if curricula:
            best = min(curricula, key=lambda t: float(np.mean(table[t]["total_steps_to_threshold_per_seed"])))
            r = ratio_ci(table[best]["total_steps_to_threshold_per_seed"], control)
            ratio = {
                "mean": r["ratio"],
                "low": r["low"],
                "high": r["high"],
                "best": best,
                "seeds": seeds,
                # censored runs never reached the threshold: the ratio is then a bound, not an estimate
                "curriculum_censored": sum(table[best]["censored"]),
                "control_censored": sum(control_censored),
            }
    return {
        "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
        "stage": result["stage"],
        "threshold": result["threshold"],
        "seeds": seeds,
        "teachers": table,
        "steps_to_threshold_ratio": ratio,
        "train_seconds": seconds,
    }


def retention(config: Path, seeds: int, runs_dir: Path) -> dict[str, Any]:
    """Retention per stage of the LM quickstart: final / at-mastery held-out scores and the retention matrix."""
    from upbringing.curriculum.checks import load_config
    from upbringing.curriculum.launch import train
    from upbringing.curriculum.runner import RETENTION_FILE, SUMMARY_FILE

    method = load_config(config, check_envs=False).curriculum.retention.method
    per_seed, seconds = [], {}
    for seed in range(seeds):
        run_dir = runs_dir / f"{method}-s{seed}"
        if not (run_dir / SUMMARY_FILE).exists():
            if run_dir.exists():
                shutil.rmtree(run_dir)
            start = time.perf_counter()
            train(load_config(config, [f"seed={seed}", "tracking.wandb=off"]), run_dir, progress=False)
            seconds[run_dir.name] = round(time.perf_counter() - start, 1)
            print(f"  trained {run_dir} in {seconds[run_dir.name]:.0f} s", flush=True)
        else:
            print(f"  reusing {run_dir}", flush=True)
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
        matrix = json.loads((run_dir / RETENTION_FILE).read_text())
        per_seed.append((summary, matrix))
    names = per_seed[0][1]["stages"]
    stages: dict[str, Any] = {}
    seeds_retention = [seed_retention(summary, m) for summary, m in per_seed]
    for name in names:
        at_mastery, final, worst, ratios = [], [], [], []
        for per_stage in seeds_retention:
            r = per_stage[name]
            if r is None:
                continue
            at_mastery.append(r["at_mastery"])
            final.append(r["final"])
            worst.append(r["lowest"])
            ratios.append(r["final"] / r["at_mastery"] if r["at_mastery"] else None)
        stages[name] = {
            "mastered_seeds": len(at_mastery),
            "at_mastery": at_mastery,
            "final": final,
            "lowest_after_later_stages": worst,
            "ratio": ratios,
            "ratio_mean": float(np.mean([r for r in ratios if r is not None])) if any(ratios) else None,
            "goal_met": bool(at_mastery) and all(w >= 0.9 * a for w, a in zip(worst, at_mastery)),
        }
    return {
        "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
        "method": method,
        "seeds": seeds,
        "stages": stages,
        "matrices": [{"seed": s["seed"], **m} for s, m in per_seed],
        "train_seconds": seconds,
    }


def seed_retention(summary: dict[str, Any], matrix: dict[str, Any]) -> dict[str, dict[str, float] | None]:
    """One run's retention per stage, from its ``summary.json`` and ``retention.json``: the held-out score at
    mastery (the matrix's diagonal), the final held-out score and the lowest score after any later stage (the final
    one included); None for a stage the run never mastered (or skipped, as the ``direct`` control does)."""
    names = matrix["stages"]
    rows = [(names.index(a), row) for a, row in zip(matrix["after"], matrix["matrix"])]
    out: dict[str, dict[str, float] | None] = {}
    for j, name in enumerate(names):
        stage = summary["stages"][j]
        own = [row[j] for a, row in rows if a == j and row[j] is not None]
        later = [row[j] for a, row in rows if a > j and row[j] is not None]
        if not stage["mastered"] or not own or stage["final_score"] is None:
            out[name] = None
            continue
        final = float(stage["final_score"])
        out[name] = {"at_mastery": float(own[0]), "final": final, "lowest": float(min([*later, final]))}
    return out


def format_matrix(m: dict[str, Any]) -> str:
    """A retention matrix as text: one row per 'after stage', one column per stage."""
    names = m["stages"]
    lines = ["after \\ stage  " + "  ".join(f"{n[:11]:>11}" for n in names)]
    for after, row in zip(m["after"], m["matrix"]):
        cells = "  ".join(f"{'':>11}" if v is None else f"{v:>11.2f}" for v in row)
        lines.append(f"{after[:13]:<13}  {cells}")
    return "\n".join(lines)


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks curriculum")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    parser.add_argument("--config", default=str(ROOT / "configs" / "curriculum_target.yaml"), help="target config")
    parser.add_argument("--teachers", default=",".join(TEACHERS), help="teachers to compare (comma-separated)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per teacher on the target")
    parser.add_argument("--runs-dir", default="runs/benchmark-curriculum", help="where the runs are kept")
    parser.add_argument(
        "--retention-config", default=str(ROOT / "configs" / "quickstart.yaml"), help="LM config for retention"
    )
    parser.add_argument("--retention-seeds", type=int, default=1, help="seeds of the retention runs (0: skip)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every target run")
    args = parser.parse_args(argv)
    runs_dir = Path(args.runs_dir)
    teachers = [t.strip() for t in args.teachers.split(",") if t.strip()]

    figures: dict[str, Any] = {}
    if args.retention_seeds > 0:
        print(f"retention: {args.retention_config}, seeds 0..{args.retention_seeds - 1}", flush=True)
        figures["retention"] = retention(Path(args.retention_config), args.retention_seeds, runs_dir / "quickstart")
        for m in figures["retention"]["matrices"]:
            print(f"retention matrix, seed {m['seed']}:\n{format_matrix(m)}")
    if args.seeds > 0 and teachers:
        print(f"curriculum benefit: {args.config}, {', '.join(teachers)}, seeds 0..{args.seeds - 1}", flush=True)
        figures["target"] = benefit(Path(args.config), teachers, args.seeds, runs_dir / "target", args.overrides)
        figures["steps_to_threshold_ratio"] = figures["target"]["steps_to_threshold_ratio"]
    return figures
