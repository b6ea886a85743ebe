"""Comparing learning curves across runs: does the curriculum help on the final stage?

The transfer metrics of Taylor & Stone (2009, "Transfer Learning for Reinforcement Learning Domains: A Survey",
JMLR 10) on the learning curve of a target stage (by default the last), with confidence intervals over seeds:

- **initial performance** and **jumpstart** (its difference to the control): the first held-out score on the stage;
- **time to threshold**: env steps trained on the stage until a held-out score first reaches the threshold (by
  default the stage's promotion threshold), and **total time to threshold**, counting every env step of the run
  (the earlier stages of a curriculum included: the price of the curriculum);
- **asymptotic performance**: the mean of the last held-out scores;
- **area under the curve** (mean performance over the first ``horizon`` steps on the stage) and the **transfer
  ratio**: a group's area divided by the control's.

A run's curve is read from its run folder: the ``evaluation`` events of the stage at its *last* level (what the
direct control trains on; evaluations at easier levels are left out, their training steps still count on the x
axis), then the final held-out score of the summary. Runs are grouped by teacher (sequential curriculum, direct
control, ...) and each group is compared with the control group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from upbringing.curriculum.config import run_config
from upbringing.curriculum.factory import stage_levels
from upbringing.curriculum.runner import SUMMARY_FILE
from upbringing.curriculum.texttable import text_table
from upbringing.curriculum.tracking import read_events, read_json
from upbringing.yamlfile import FileError, Problem

CONTROL = "direct"
"""The teacher of the no-curriculum control; its group is the reference when present."""


@dataclass(frozen=True)
class Curve:
    """A learning curve: performance ``y[i]`` measured after ``x[i]`` env steps (``x`` non-decreasing)."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y) or not self.x:
            raise ValueError("a curve needs as many x as y values, and at least one point")
        if any(b < a for a, b in zip(self.x, self.x[1:])):
            raise ValueError("curve x values must be non-decreasing")

    @classmethod
    def of(cls, x: Sequence[float], y: Sequence[float]) -> Curve:
        """A curve from any two sequences of numbers."""
        return cls(tuple(float(v) for v in x), tuple(float(v) for v in y))


# ------------------------------------------------------------------------------------------------- metrics
def initial_performance(curve: Curve) -> float:
    """The first measured performance."""
    return curve.y[0]


def time_to_threshold(curve: Curve, threshold: float) -> float | None:
    """The x of the first point whose performance reaches ``threshold``; None if none does (censored)."""
    for x, y in zip(curve.x, curve.y):
        if y >= threshold:
            return x
    return None


def asymptotic_performance(curve: Curve, tail: int = 3) -> float:
    """The mean performance of the last ``tail`` points."""
    return float(np.mean(curve.y[-tail:]))


def area_under_curve(curve: Curve, horizon: float) -> float:
    """Mean performance over steps ``[0, horizon]`` (the area under the curve divided by ``horizon``).

    The curve is linear between points, holds its first value before the first point and its last value after the
    last one (a run that stopped at mastery keeps its level).
    """
    if horizon <= 0:
        raise ValueError(f"horizon must be positive, got {horizon}")
    x = np.asarray(curve.x)
    y = np.asarray(curve.y)
    inside = x < horizon
    xs = np.concatenate([[0.0], x[inside], [horizon]])
    ys = np.concatenate([[y[0]], y[inside], [float(np.interp(horizon, x, y))]])
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2) / horizon)


def transfer_ratio(area: float, control_area: float) -> float | None:
    """A learner's area under the curve divided by the control's (None when the control's area is not positive)."""
    return area / control_area if control_area > 0 else None


# ---------------------------------------------------------------------------------------- intervals over seeds
def mean_ci(values: Sequence[float | None], confidence: float = 0.95) -> dict[str, Any]:
    """Mean and Student-t confidence interval of the non-missing ``values`` (no interval from fewer than two)."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    out: dict[str, Any] = {"mean": None, "low": None, "high": None, "n": int(v.size)}
    if v.size == 0:
        return out
    out["mean"] = float(v.mean())
    if v.size >= 2:
        half = float(stats.t.ppf((1 + confidence) / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
        out["low"], out["high"] = out["mean"] - half, out["mean"] + half
    return out


def difference_ci(a: Sequence[float | None], b: Sequence[float | None], confidence: float = 0.95) -> dict[str, Any]:
    """Difference of means ``mean(a) - mean(b)`` with Welch's confidence interval (unequal variances)."""
    x = np.asarray([v for v in a if v is not None], dtype=float)
    y = np.asarray([v for v in b if v is not None], dtype=float)
    out: dict[str, Any] = {"difference": None, "low": None, "high": None, "n": [int(x.size), int(y.size)]}
    if x.size == 0 or y.size == 0:
        return out
    out["difference"] = float(x.mean() - y.mean())
    if x.size >= 2 and y.size >= 2:
        va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
        se = float(np.sqrt(va + vb))
        if se == 0:
            out["low"] = out["high"] = out["difference"]
        else:
            dof = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
            half = float(stats.t.ppf((1 + confidence) / 2, dof) * se)
            out["low"], out["high"] = out["difference"] - half, out["difference"] + half
    return out


def ratio_ci(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> dict[str, Any]:
    """Ratio of means ``mean(a) / mean(b)`` with a percentile bootstrap interval (seeds resampled within each group,
    a fixed RNG seed so the interval is reproducible)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out: dict[str, Any] = {"ratio": None, "low": None, "high": None, "n": [int(x.size), int(y.size)]}
    if x.size == 0 or y.size == 0 or not y.mean() > 0:
        return out
    out["ratio"] = float(x.mean() / y.mean())
    if x.size >= 2 and y.size >= 2:
        rng = np.random.default_rng(seed)
        xs = x[rng.integers(x.size, size=(resamples, x.size))].mean(1)
        ys = y[rng.integers(y.size, size=(resamples, y.size))].mean(1)
        ok = ys > 0
        ratios = xs[ok] / ys[ok]
        alpha = (1 - confidence) / 2
        out["low"], out["high"] = (float(q) for q in np.quantile(ratios, [alpha, 1 - alpha]))
    return out


# ------------------------------------------------------------------------------------------------ comparing
@dataclass(frozen=True)
class RunCurve:
    """One run's learning curve on the target stage.

    Attributes:
        run_dir: The run folder.
        group: The group the run belongs to (its teacher by default).
        seed: The run's seed.
        stage: The target stage's name.
        curve: Held-out score against env steps trained on the stage.
        total: The same points against the run's global env step (every stage's training counted).
        threshold: The stage's promotion threshold.
        metric: What the score is (``success`` or ``return``).
        steps_to_mastery: Env steps on the stage until its promotion rule passed at the last level (the summary's
            figure: windowed, and compliance-gated where the rule asks), None if not (yet) mastered.
    """

    run_dir: str
    group: str
    seed: int
    stage: str
    curve: Curve
    total: Curve
    threshold: float
    metric: str
    steps_to_mastery: float | None = None


def compare_curves(
    groups: Mapping[str, Sequence[Curve]],
    threshold: float,
    *,
    totals: Mapping[str, Sequence[Curve]] | None = None,
    reference: str | None = None,
    horizon: float | None = None,
    tail: int = 3,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Transfer metrics of groups of learning curves (one curve per seed), each group against ``reference``.

    Args:
        groups: Curves per group, x = env steps on the target stage.
        threshold: Performance that counts as learned (time to threshold).
        totals: The same curves against the run's global env step, for the total time to threshold.
        reference: The control group (default: ``direct`` if present, else the first group).
        horizon: Steps over which areas are taken (default: the shortest curve's last x, so every run is measured
            over steps it actually trained).
        tail: Points averaged for asymptotic performance.
        confidence: Confidence level of the intervals.

    Returns:
        ``groups``: per group its per-seed values and ``mean_ci`` of ``initial``, ``time_to_threshold`` (over the
        runs that reached it; ``reached`` counts them), ``total_time_to_threshold``, ``asymptotic`` and ``auc``;
        ``versus_reference``: per other group ``jumpstart`` and the differences (Welch intervals) and the
        ``transfer_ratio`` (bootstrap interval).
    """
    if not groups or any(not curves for curves in groups.values()):
        raise ValueError("every group needs at least one curve")
    names = list(groups)
    reference = reference if reference is not None else (CONTROL if CONTROL in groups else names[0])
    if reference not in groups:
        raise ValueError(f"reference group {reference!r} is not one of: {', '.join(names)}")
    if horizon is None:
        horizon = min(c.x[-1] for curves in groups.values() for c in curves)
    if not horizon > 0:
        raise ValueError("the horizon must be positive: give one, or compare curves that extend past step 0")
    values: dict[str, dict[str, list[float | None]]] = {}
    for name, curves in groups.items():
        total = (totals or {}).get(name)
        values[name] = {
            "initial": [initial_performance(c) for c in curves],
            "time_to_threshold": [time_to_threshold(c, threshold) for c in curves],
            "total_time_to_threshold": [time_to_threshold(c, threshold) for c in total] if total else [],
            "asymptotic": [asymptotic_performance(c, tail) for c in curves],
            "auc": [area_under_curve(c, horizon) for c in curves],
        }
    out_groups = {}
    for name, v in values.items():
        out_groups[name] = {
            "runs": len(groups[name]),
            "reached": sum(t is not None for t in v["time_to_threshold"]),
            "values": v,
            **{k: mean_ci(vals, confidence) for k, vals in v.items()},
        }
    ref = values[reference]
    versus = {}
    for name in names:
        if name == reference:
            continue
        v = values[name]
        versus[name] = {
            "jumpstart": difference_ci(v["initial"], ref["initial"], confidence),
            "time_to_threshold": difference_ci(v["time_to_threshold"], ref["time_to_threshold"], confidence),
            "total_time_to_threshold": difference_ci(
                v["total_time_to_threshold"], ref["total_time_to_threshold"], confidence
            ),
            "asymptotic": difference_ci(v["asymptotic"], ref["asymptotic"], confidence),
            "auc": difference_ci(v["auc"], ref["auc"], confidence),
            "transfer_ratio": ratio_ci(
                [x for x in v["auc"] if x is not None], [x for x in ref["auc"] if x is not None], confidence
            ),
        }
    return {
        "threshold": threshold,
        "horizon": horizon,
        "tail": tail,
        "confidence": confidence,
        "reference": reference,
        "groups": out_groups,
        "versus_reference": versus,
    }


def run_curve(run_dir: Path, stage: str | None = None, group_by: str = "teacher") -> RunCurve:
    """Read a run folder's learning curve on ``stage`` (default: its last stage) at the stage's last level.

    Raises:
        FileError: not a run folder, an unknown stage, or no evaluation at the stage's last level yet.
    """
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    names = [s.name for s in config.stages]
    stage = stage or names[-1]
    if stage not in names:
        raise FileError([Problem(str(run_dir), f"no stage {stage!r}; stages: {', '.join(names)}")])
    cfg = config.stages[names.index(stage)]
    last = len(stage_levels(cfg)) - 1
    steps_key = f"curriculum/{stage}/steps"
    stage_steps: dict[int, float] = {}  # global step -> env steps trained on the stage by then
    xs, totals, ys = [], [], []
    for row in read_events(run_dir):
        if row["kind"] == "metrics" and steps_key in row["metrics"]:
            stage_steps[row["step"]] = row["metrics"][steps_key]
        elif row["kind"] == "evaluation" and row.get("stage") == stage and row.get("level") == last:
            if row.get("score") is None or row["step"] not in stage_steps:
                continue
            xs.append(stage_steps[row["step"]])
            totals.append(row["step"])
            ys.append(row["score"])
    summary_path = run_dir / SUMMARY_FILE
    mastery = None
    if summary_path.exists():  # the final held-out score, after all training
        summary = read_json(summary_path)
        try:
            final = next(s for s in summary["stages"] if s["name"] == stage)
            mastery = final["steps_to_mastery"] if final["mastered"] else None
            if final["final_score"] is not None and not final["skipped"]:
                xs.append(max([float(final["steps"]), *xs]))
                totals.append(max([float(summary["global_step"]), *totals]))
                ys.append(float(final["final_score"]))
        except (KeyError, TypeError, ValueError, StopIteration):
            problem = Problem(str(summary_path), f"damaged run folder: no summary of stage {stage!r}")
            raise FileError([problem]) from None
    if not ys:
        raise FileError([Problem(str(run_dir), f"no held-out evaluation of stage {stage!r} at its last level yet")])
    group = config.curriculum.teacher if group_by == "teacher" else config.name if group_by == "name" else run_dir.name
    return RunCurve(
        str(run_dir),
        group,
        config.seed,
        stage,
        Curve.of(xs, ys),
        Curve.of(totals, ys),
        float(cfg.promotion.threshold),
        cfg.promotion.metric,
        mastery,
    )


def compare_runs(
    run_dirs: Sequence[Path],
    *,
    stage: str | None = None,
    threshold: float | None = None,
    horizon: float | None = None,
    reference: str | None = None,
    group_by: str = "teacher",
    tail: int = 3,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Compare run folders on a target stage (default: the last): :func:`compare_curves` of their curves, grouped
    by ``group_by`` (``teacher``, ``name`` or ``dir``), with the stage's promotion threshold unless ``threshold``."""
    runs = [run_curve(Path(d), stage, group_by) for d in run_dirs]
    if not runs:
        raise FileError([Problem("command line", "give at least one run folder")])
    stages = {r.stage for r in runs}
    if len(stages) > 1:
        raise FileError([Problem("command line", f"the runs' last stages differ ({', '.join(sorted(stages))})")])
    groups: dict[str, list[Curve]] = {}
    totals: dict[str, list[Curve]] = {}
    for r in runs:
        groups.setdefault(r.group, []).append(r.curve)
        totals.setdefault(r.group, []).append(r.total)
    try:
        result = compare_curves(
            groups,
            runs[0].threshold if threshold is None else threshold,
            totals=totals,
            reference=reference,
            horizon=horizon,
            tail=tail,
            confidence=confidence,
        )
    except ValueError as err:
        raise FileError([Problem("command line", str(err))]) from None
    # The promotion rule's own verdict (windowed, compliance-gated) as a second, stricter time to threshold.
    mastery: dict[str, list[float | None]] = {}
    for r in runs:
        mastery.setdefault(r.group, []).append(r.steps_to_mastery)
    for name, values in mastery.items():
        g = result["groups"][name]
        g["values"]["steps_to_mastery"] = values
        g["steps_to_mastery"] = mean_ci(values, confidence)
        g["mastered"] = sum(v is not None for v in values)
    ref = mastery[result["reference"]]
    for name, v in result["versus_reference"].items():
        v["steps_to_mastery"] = difference_ci(mastery[name], ref, confidence)
    return {
        "stage": runs[0].stage,
        "metric": runs[0].metric,
        "runs": [{"run_dir": r.run_dir, "group": r.group, "seed": r.seed} for r in runs],
        "curves": {r.run_dir: {"x": list(r.curve.x), "total_x": list(r.total.x), "y": list(r.curve.y)} for r in runs},
        **result,
    }


# ------------------------------------------------------------------------------------------------- printing
def _ci(m: Mapping[str, Any], spec: str, key: str = "mean") -> str:
    if m.get(key) is None:
        return "-"
    text = format(m[key], spec)
    if m.get("low") is not None:
        text += f" [{format(m['low'], spec)}, {format(m['high'], spec)}]"
    return text


def format_comparison(result: Mapping[str, Any]) -> str:
    """The comparison as readable tables (means with confidence intervals over seeds)."""
    pct = f"{result['confidence']:.0%}"
    lines = [
        f"Stage {result['stage']!r} ({result['metric']}): threshold {result['threshold']:g}, area over the first "
        f"{result['horizon']:,.0f} steps on the stage; means over seeds with {pct} intervals"
    ]
    rows: list[tuple[str, ...]] = [
        ("group", "runs", "initial", "steps to threshold", "total steps to threshold", "asymptotic", "AUC")
    ]
    mastery = any("steps_to_mastery" in g for g in result["groups"].values())
    if mastery:
        rows[0] += ("steps to mastery",)
    for name, g in result["groups"].items():
        reach = f" ({g['reached']}/{g['runs']} reached)"
        row: tuple[str, ...] = (
            name + (" (control)" if name == result["reference"] else ""),
            str(g["runs"]),
            _ci(g["initial"], ".2f"),
            _ci(g["time_to_threshold"], ",.0f") + reach,
            _ci(g["total_time_to_threshold"], ",.0f"),
            _ci(g["asymptotic"], ".2f"),
            _ci(g["auc"], ".3f"),
        )
        if mastery:
            row += (_ci(g["steps_to_mastery"], ",.0f") + f" ({g['mastered']}/{g['runs']} mastered)",)
        rows.append(row)
    lines += text_table(rows)
    if result["versus_reference"]:
        lines.append("")
        lines.append(f"Against the control ({result['reference']}): differences of means, transfer ratio of areas")
        rows = [("group", "jumpstart", "steps to threshold", "total steps", "asymptotic", "AUC", "transfer ratio")]
        if mastery:
            rows[0] += ("steps to mastery",)
        for name, v in result["versus_reference"].items():
            row = (
                name,
                _ci(v["jumpstart"], "+.2f", "difference"),
                _ci(v["time_to_threshold"], "+,.0f", "difference"),
                _ci(v["total_time_to_threshold"], "+,.0f", "difference"),
                _ci(v["asymptotic"], "+.2f", "difference"),
                _ci(v["auc"], "+.3f", "difference"),
                _ci(v["transfer_ratio"], ".2f", "ratio"),
            )
            if mastery:
                row += (_ci(v["steps_to_mastery"], "+,.0f", "difference"),)
            rows.append(row)
        lines += text_table(rows)
    return "\n".join(lines)


__all__ = [
    "CONTROL",
    "Curve",
    "RunCurve",
    "area_under_curve",
    "asymptotic_performance",
    "compare_curves",
    "compare_runs",
    "difference_ci",
    "format_comparison",
    "initial_performance",
    "mean_ci",
    "ratio_ci",
    "run_curve",
    "time_to_threshold",
    "transfer_ratio",
]
