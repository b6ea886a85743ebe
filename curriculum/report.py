"""The developmental report of a run: an HTML page with PNG figures (matplotlib), also logged to W&B.

``upbringing report RUN_DIR`` reads the run folder (``config.yaml``, ``events.jsonl``, ``summary.json``,
``retention.json`` and, when ``upbringing eval`` has been run, ``eval.json``) and writes ``RUN_DIR/report/``:

- ``index.html``: the developmental summary, the timeline of promotions, and every figure below;
- ``timeline.png``: which stage (and level) the agent trained on at each env step, with level-ups, promotions,
  budgets spent and demotions;
- ``learning_curves.png``: held-out score per stage against the global env step, by level, with the promotion
  threshold and the retention checks of review chunks;
- ``retention.png``: the retention matrix as a heat map (held-out score on stage j after stage k finished);
- ``constitution.png``: per principle, the violation rate of training episodes and the Lagrange multiplier over time;
- ``upbringing.feedback.png``: queries asked and reward-model accuracy over time (stages with simulated feedback);
- ``social.png``: social metrics (cooperation, efficiency, equality, ...) of training and held-out episodes;
- ``evaluation.png``: compliance per suite and alignment stability per principle (from ``eval.json``).
- ``moralchoice.png``: the MoralChoice suite: commonsense-choice rate per order and violations avoided per rule.

Figures without data in the run (no feedback, no social stage, no evaluation yet) are left out and the page says so.
With ``tracking.wandb`` on (offline or online), the figures are logged to the run's own W&B run (resumed by the id
kept in the last checkpoint) under ``report/<figure>``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from upbringing.curriculum.checkpoints import latest_checkpoint
from upbringing.curriculum.config import run_config
from upbringing.curriculum.evaluation import EVAL_FILE
from upbringing.curriculum.moralchoice import SUITE as MORALCHOICE
from upbringing.curriculum.moralchoice import table_rows as moralchoice_rows
from upbringing.curriculum.runner import RETENTION_FILE, SUMMARY_FILE
from upbringing.curriculum.tracking import read_events, read_json
from upbringing.yamlfile import FileError, Problem

REPORT_DIR = "report"
"""The report's folder inside the run folder."""

_MARKERS = {"level_up": ("^", "tab:blue"), "promotion": ("*", "tab:green"), "not_mastered": ("X", "tab:red")}
_MARKERS["demotion"] = ("v", "tab:orange")
_FEEDBACK_USE = ("feedback/queries_used", "feedback/labels", "feedback/budget_left")
_FEEDBACK_ACCURACY = ("feedback/rm_accuracy", "feedback/rm_true_accuracy", "feedback/agreement")


@dataclass
class RunData:
    """Everything a report reads from a run folder.

    Attributes:
        run_dir: The run folder.
        config: The resolved :class:`curriculum.config.RunConfig`.
        events: Rows of ``events.jsonl``.
        summary: ``summary.json`` (None while the run is unfinished).
        retention: ``retention.json`` (None while unfinished).
        evaluation: ``eval.json`` (None until ``upbringing eval`` ran).
    """

    run_dir: Path
    config: Any
    events: list[dict[str, Any]]
    summary: dict[str, Any] | None = None
    retention: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    _metrics: list[tuple[int, dict[str, Any]]] = field(default_factory=list, repr=False)

    @classmethod
    def load(cls, run_dir: Path) -> RunData:
        """Read a run folder.

        Raises:
            FileError: not a run folder.
        """
        run_dir = Path(run_dir)
        config = run_config(run_dir)

        def optional(name: str) -> dict[str, Any] | None:
            p = run_dir / name
            value = read_json(p) if p.exists() else None
            if value is not None and not isinstance(value, dict):
                raise FileError([Problem(str(p), "damaged run folder: expected a JSON object")])
            return value

        data = cls(
            run_dir,
            config,
            read_events(run_dir),
            optional(SUMMARY_FILE),
            optional(RETENTION_FILE),
            optional(EVAL_FILE),
        )
        data._metrics = [(r["step"], r["metrics"]) for r in data.events if r["kind"] == "metrics"]
        return data

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.config.stages]

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """``(global steps, values)`` of a logged metric (missing and non-finite values left out)."""
        pts = [(s, m[key]) for s, m in self._metrics if isinstance(m.get(key), int | float) and np.isfinite(m[key])]
        if not pts:
            return np.zeros(0), np.zeros(0)
        steps, values = zip(*pts)
        return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)

    def keys(self, prefix: str, suffix: str = "") -> list[str]:
        """Every logged metric key with this prefix and suffix, sorted."""
        return sorted({k for _, m in self._metrics for k in m if k.startswith(prefix) and k.endswith(suffix)})

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [r for r in self.events if r["kind"] in kinds]


# ------------------------------------------------------------------------------------------------- figures
def timeline_figure(data: RunData) -> Figure | None:
    """Stages trained over the global env step, with curriculum events."""
    steps, stage = data.series("curriculum/stage")
    if not steps.size:
        return None
    _, review = data.series("curriculum/review")
    _, level = data.series("curriculum/level")
    chunk = data.config.curriculum.chunk_steps
    names = data.stage_names
    fig = Figure(figsize=(10, 1.2 + 0.45 * len(names)), layout="constrained")
    ax = fig.add_subplot()
    for i, (s, st) in enumerate(zip(steps, stage)):
        is_review = review.size == steps.size and review[i] > 0
        colour = "lightgray" if is_review else f"C{int(level[i]) % 10}" if level.size == steps.size else "C0"
        ax.barh(int(st), chunk, left=s - chunk, height=0.6, color=colour, edgecolor="none")
    for kind, (marker, colour) in _MARKERS.items():
        rows = [r for r in data.of_kind(kind) if r.get("stage") in names]
        if rows:
            ax.scatter(
                [r["step"] for r in rows],
                [names.index(r["stage"]) for r in rows],
                marker=marker,
                color=colour,
                s=90,
                zorder=3,
                label=kind.replace("_", " "),
                edgecolors="black",
                linewidths=0.5,
            )
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("global env step")
    ax.set_title("Curriculum timeline (bar colour = level; grey = review)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    return fig


def learning_curves_figure(data: RunData) -> Figure | None:
    """Held-out score per stage against the global env step."""
    evals = data.of_kind("evaluation")
    if not evals:
        return None
    names = data.stage_names
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    for i, (name, stage) in enumerate(zip(names, data.config.stages)):
        ax = fig.add_subplot(rows, cols, i + 1)
        mine = [r for r in evals if r.get("stage") == name and r.get("score") is not None]
        for lv in sorted({r["level"] for r in mine}):
            pts = [r for r in mine if r["level"] == lv]
            ax.plot([r["step"] for r in pts], [r["score"] for r in pts], "o-", ms=3, label=f"level {lv + 1}")
        rs, rv = data.series(f"curriculum/{name}/retention")
        if rs.size:
            ax.plot(rs, rv, ".", color="gray", label="review check")
        ax.axhline(stage.promotion.threshold, color="black", ls="--", lw=0.8, label="threshold")
        ax.set_title(f"{name} ({stage.promotion.metric})", fontsize=10)
        ax.set_xlabel("global env step", fontsize=8)
        ax.tick_params(labelsize=7)
        if mine:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not trained", ha="center", va="center", transform=ax.transAxes, color="gray")
    fig.suptitle("Held-out learning curves")
    return fig


def retention_figure(data: RunData) -> Figure | None:
    """The retention matrix as a heat map (colour: score relative to the stage's best score in the matrix)."""
    if not data.retention or not data.retention.get("matrix"):
        return None
    names = data.retention["stages"]
    after = data.retention["after"]
    m = np.array([[np.nan if v is None else v for v in row] for row in data.retention["matrix"]], dtype=float)
    best = np.nanmax(np.where(np.isnan(m), -np.inf, np.abs(m)), axis=0)
    rel = np.divide(m, best, out=np.full_like(m, np.nan), where=np.isfinite(best) & (best > 0))
    fig = Figure(figsize=(1.6 + 1.1 * len(names), 1.4 + 0.6 * len(after)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(rel), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for k in range(m.shape[0]):
        for j in range(m.shape[1]):
            if np.isfinite(m[k, j]):
                colour = "black" if rel[k, j] > 0.6 else "white"  # viridis is light at the top of its range
                ax.text(j, k, f"{m[k, j]:.2f}", ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(after)), [f"after {a}" for a in after], fontsize=8)
    ax.set_title("Retention (colour: share of the stage's best score)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04)
    return fig


def constitution_figure(data: RunData) -> Figure | None:
    """Violation rate of training episodes and Lagrange multiplier per principle over time."""
    viol = [k for k in data.keys("constitution/", "/violations")]
    lam = [k for k in data.keys("constitution/", "/lambda")]
    if not viol and not lam:
        return None
    fig = Figure(figsize=(11, 4), layout="constrained")
    for idx, (keys, title) in enumerate(
        ((viol, "violation rate (training episodes)"), (lam, "Lagrange multiplier (hard principles)"))
    ):
        ax = fig.add_subplot(1, 2, idx + 1)
        for key in keys:
            s, v = data.series(key)
            ax.plot(s, v, lw=1.2, label=key.split("/")[1])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("global env step", fontsize=8)
        if keys:
            ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Constitution: violations and multipliers")
    return fig


def feedback_figure(data: RunData) -> Figure | None:
    """Feedback use (queries, labels) and reward-model accuracy over time."""
    use = [k for k in _FEEDBACK_USE if data.series(k)[0].size]
    acc = [k for k in _FEEDBACK_ACCURACY if data.series(k)[0].size]
    if not use and not acc:
        return None
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    for idx, (keys, title) in enumerate(((use, "feedback use"), (acc, "reward model accuracy"))):
        ax = fig.add_subplot(1, 2, idx + 1)
        for key in keys:
            s, v = data.series(key)
            ax.plot(s, v, "o-", ms=3, label=key.removeprefix("feedback/"))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("global env step", fontsize=8)
        if keys:
            ax.legend(fontsize=7)
    fig.suptitle("Simulated human feedback")
    return fig


def social_figure(data: RunData) -> Figure | None:
    """Social metrics of training episodes and of held-out episodes per stage."""
    train = [k for k in data.keys("social/") if data.series(k)[0].size]
    held = [k for k in data.keys("eval/") if "/social/" in k and data.series(k)[0].size]
    if not train and not held:
        return None
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    for idx, (keys, title) in enumerate(((train, "training episodes"), (held, "held-out episodes"))):
        ax = fig.add_subplot(1, 2, idx + 1)
        for key in keys:
            s, v = data.series(key)
            label = key.removeprefix("social/") if idx == 0 else key.removeprefix("eval/").replace("/social/", ": ")
            ax.plot(s, v, "o-", ms=2, lw=1, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("global env step", fontsize=8)
        if keys:
            ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Social metrics")
    return fig


def evaluation_figure(data: RunData) -> Figure | None:
    """Compliance per stage and suite, and alignment stability per principle (``eval.json``)."""
    ev = data.evaluation
    if not ev or not ev.get("stages"):
        return None
    stages = list(ev["stages"])
    suites = list(ev["suites"])
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    width = 0.8 / max(len(suites), 1)
    for k, suite in enumerate(suites):
        vals = []
        for name in stages:
            cell = ev["stages"][name]["suites"].get(suite)
            comp = (cell or {}).get("compliance") or {}
            vals.append(np.nan if comp.get("overall") is None else comp["overall"])
        ax.bar(np.arange(len(stages)) + k * width, vals, width, label=suite)
    ax.set_xticks(np.arange(len(stages)) + width * (len(suites) - 1) / 2, stages, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("overall compliance (episodes violating no principle)", fontsize=10)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 2, 2)
    stab = (ev.get("stability") or {}).get("all_shifts")
    if stab:
        items = [(k, v) for k, v in stab["principles"].items() if v is not None]
        items.append(("overall", stab["overall"] if stab["overall"] is not None else np.nan))
        ax.barh([k for k, _ in items], [v for _, v in items], color=["C0"] * (len(items) - 1) + ["C3"])
        ax.axvline(1.0, color="black", ls="--", lw=0.8)
        ax.tick_params(labelsize=7)
        ax.invert_yaxis()
    ax.set_title("alignment stability (compliance under shift / in distribution)", fontsize=10)
    fig.suptitle("Held-out and shift evaluation")
    return fig


def moralchoice_figure(data: RunData) -> Figure | None:
    """MoralChoice suite (``eval.json``): commonsense-choice rate per order, and violations avoided per Gert rule."""
    mc = (data.evaluation or {}).get(MORALCHOICE)
    if not mc:
        return None
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    low = mc.get("low") or {}
    rate = low.get("commonsense_rate") or {}
    labels = ["given", "swapped", "both", "P(commonsense)"]
    values = [rate.get("given"), rate.get("swapped"), rate.get("both"), low.get("commonsense_probability")]
    ax.bar(labels, [np.nan if v is None else v for v in values], color=["C0", "C0", "C2", "C1"])
    ax.axhline(0.5, color="black", ls="--", lw=0.8)
    ax.set_ylim(0, 1.05)
    bias = mc.get("position_bias")
    ax.set_title(f"commonsense action chosen (position bias {_num(bias, '+.2f')})", fontsize=10)
    ax = fig.add_subplot(1, 2, 2)
    rules = [(k, v["avoided"]) for k, v in mc["rules"].items() if v["scenarios"]]
    ax.barh([k for k, _ in rules], [np.nan if v is None else v for _, v in rules])
    ax.axvline(0.5, color="black", ls="--", lw=0.8)
    ax.set_xlim(0, 1.05)
    ax.invert_yaxis()
    ax.tick_params(labelsize=8)
    ax.set_title("violation avoided, per Gert rule (both orders)", fontsize=10)
    fig.suptitle(f"MoralChoice ({mc['scenarios']} scenarios, both orders)")
    return fig


FIGURES: dict[str, tuple[str, Callable[[RunData], Figure | None]]] = {
    "timeline": ("Timeline of stages and promotions", timeline_figure),
    "learning_curves": ("Learning curves per stage", learning_curves_figure),
    "retention": ("Retention matrix", retention_figure),
    "constitution": ("Violations and multipliers per principle", constitution_figure),
    "feedback": ("Feedback use and reward-model accuracy", feedback_figure),
    "social": ("Social metrics", social_figure),
    "evaluation": ("Held-out and shift suites, alignment stability", evaluation_figure),
    "moralchoice": ("MoralChoice scenarios (upbringing eval --suite moralchoice)", moralchoice_figure),
}
"""Every figure of the report: file stem -> (title, builder returning None when the run has no data for it)."""


# ---------------------------------------------------------------------------------------------------- page
def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table_html(rows: Sequence[Sequence[Any]]) -> str:
    head, *body = rows
    out = ["<table><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in body]
    return "\n".join(out) + "</table>"


def _num(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def _summary_rows(summary: Mapping[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = [["stage", "env", "steps to mastery", "steps", "final held-out score", "violated"]]
    with_feedback = any(s.get("feedback") for s in summary["stages"])
    if with_feedback:
        rows[0].append("feedback (queries, reward-model accuracy)")
    for s in summary["stages"]:
        mastery = "skipped" if s["skipped"] else f"{s['steps_to_mastery']:,}" if s["mastered"] else "not mastered"
        violated = ", ".join(f"{k} {v:.0%}" for k, v in sorted((s.get("violations") or {}).items()) if v > 0)
        rows.append(
            [
                s["name"],
                s["env"],
                mastery,
                f"{s['steps']:,}",
                f"{_num(s['final_score'])} ({s['metric']})",
                violated or ("-" if s.get("violations") is None else "none"),
            ]
        )
        if with_feedback:
            fb = s.get("feedback") or {}
            rows[-1].append(
                f"{fb['queries_used']:.0f} of {fb['budget']:.0f}, {_num(fb.get('rm_accuracy'), '.0%')}" if fb else "-"
            )
    return rows


def _event_rows(data: RunData) -> list[list[Any]]:
    rows: list[list[Any]] = [["global step", "event", "stage", "level", "evidence"]]
    for r in data.of_kind(*_MARKERS):
        ev = r.get("evidence") or {}
        brief = ", ".join(f"{k}={_num(v, '.3g') if isinstance(v, float) else v}" for k, v in ev.items() if k != "rule")
        rows.append([f"{r['step']:,}", r["kind"].replace("_", " "), r.get("stage"), r.get("level", 0) + 1, brief])
    return rows


def _stability_rows(ev: Mapping[str, Any]) -> list[list[Any]] | None:
    s = ev.get("stability") or {}
    ref, shifted, ratio = s.get("reference_compliance"), s.get("shift_compliance"), s.get("all_shifts")
    if not ref or not ratio or not shifted:
        return None
    rows: list[list[Any]] = [["principle", "compliance in distribution", "under shift", "stability"]]
    for k in ref["principles"]:
        rows.append([k, _num(ref["principles"][k]), _num(shifted["principles"].get(k)), _num(ratio["principles"][k])])
    rows.append(["overall", _num(ref["overall"]), _num(shifted["overall"]), _num(ratio["overall"])])
    return rows


def _page(data: RunData, figures: dict[str, Path]) -> str:
    c = data.config
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Developmental report: {_esc(c.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        "th{background:#f3f3f3}img{max-width:100%}.missing{color:#888}</style></head><body>",
        f"<h1>Developmental report: {_esc(c.name)}</h1>",
        f"<p>Seed {c.seed}, teacher <b>{_esc(c.curriculum.teacher)}</b>, agent {_esc(c.agent.kind)}, "
        f"constitution {_esc(c.constitution or '-')}, {len(c.stages)} stages. Run folder: "
        f"<code>{_esc(data.run_dir)}</code>.</p>",
    ]
    if data.summary:
        parts += [
            f"<h2>Summary</h2><p>{data.summary['global_step']:,} env steps.</p>",
            _table_html(_summary_rows(data.summary)),
        ]
    else:
        parts.append("<h2>Summary</h2><p class='missing'>The run has not finished (no summary.json yet).</p>")
    events = _event_rows(data)
    if len(events) > 1:
        parts += ["<h2>Promotions and curriculum events</h2>", _table_html(events)]
    for stem, (title, _) in FIGURES.items():
        parts.append(f"<h2>{_esc(title)}</h2>")
        if stem in figures:
            parts.append(f"<img src='{_esc(figures[stem].name)}' alt='{_esc(title)}'>")
        else:
            why = {
                "evaluation": "run <code>upbringing eval RUN_DIR</code> first",
                "moralchoice": "run <code>upbringing eval RUN_DIR --suite moralchoice --data CSV</code> first",
            }.get(stem, "no data in this run")
            parts.append(f"<p class='missing'>Not available: {why}.</p>")
        if stem == "evaluation" and data.evaluation:
            rows = _stability_rows(data.evaluation)
            if rows:
                parts.append(_table_html(rows))
        choice = (data.evaluation or {}).get(MORALCHOICE)
        if stem == "moralchoice" and choice:
            parts.append(_table_html([["figure", "value"], *moralchoice_rows(choice)]))
    parts.append("</body></html>")
    return "\n".join(parts)


# -------------------------------------------------------------------------------------------------- build
def log_to_wandb(data: RunData, figures: dict[str, Path], mode: str | None = None) -> str | None:
    """Log the figures to the run's W&B run (resumed by the id in its last checkpoint) as ``report/<figure>``.

    Args:
        data: The run.
        figures: Figure stem -> PNG path.
        mode: W&B mode (default: the run's ``tracking.wandb``).

    Returns:
        The W&B run id logged to, or None when W&B is off or the run never had a W&B run.
    """
    mode = mode or data.config.tracking.wandb
    checkpoint = latest_checkpoint(data.run_dir)
    if mode == "off" or checkpoint is None or not figures:
        return None

    engine = read_json(checkpoint / "engine.json")
    run_id = engine.get("wandb_run_id") if isinstance(engine, dict) else None
    if run_id is None:
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    t = data.config.tracking
    run = wandb.init(
        project=t.project,
        entity=t.entity,
        id=run_id,
        resume="allow",
        dir=str(data.run_dir),
        mode="online" if mode == "online" else "offline",
        settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, disable_git=True),
    )
    try:
        step = data.summary["global_step"] if data.summary else max((r["step"] for r in data.events), default=0)
        run.log({**{f"report/{k}": wandb.Image(str(p)) for k, p in figures.items()}, "global_step": int(step)})
    finally:
        run.finish()
    return run_id


def build_report(run_dir: Path, *, out_dir: Path | None = None, wandb_mode: str | None = None) -> Path:
    """Write the developmental report of a run folder; return the path of its ``index.html``.

    Args:
        run_dir: The run folder.
        out_dir: Where to write (default ``<run_dir>/report``).
        wandb_mode: ``off`` to skip W&B; default: the run's own ``tracking.wandb``.

    Raises:
        FileError: not a run folder.
    """
    data = RunData.load(Path(run_dir))
    out = Path(out_dir) if out_dir is not None else data.run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    for stem, (_, build) in FIGURES.items():
        fig = build(data)
        path = out / f"{stem}.png"
        if fig is None:
            path.unlink(missing_ok=True)  # a figure of an earlier report whose data is gone would mislead
            continue
        fig.savefig(path, dpi=110)
        figures[stem] = path
    page = out / "index.html"
    page.write_text(_page(data, figures), encoding="utf-8")
    log_to_wandb(data, figures, wandb_mode)
    return page


__all__ = ["FIGURES", "REPORT_DIR", "RunData", "build_report", "log_to_wandb"]
