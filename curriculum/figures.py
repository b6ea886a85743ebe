"""The developmental report's figures (matplotlib), each a function of a run's :class:`RunData` that returns
None when the run has no data for it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure
from upbringing.curriculum.moralchoice import SUITE as MORALCHOICE
from upbringing.curriculum.rundata import RunData
from upbringing.curriculum.texttable import number

MARKERS = {"level_up": ("^", "tab:blue"), "promotion": ("*", "tab:green"), "not_mastered": ("X", "tab:red")}
MARKERS["demotion"] = ("v", "tab:orange")
FEEDBACK_USE = ("feedback/queries_used", "feedback/labels", "feedback/budget_left")
FEEDBACK_ACCURACY = ("feedback/rm_accuracy", "feedback/rm_true_accuracy", "feedback/agreement")


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
    for kind, (marker, colour) in MARKERS.items():
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
    use = [k for k in FEEDBACK_USE if data.series(k)[0].size]
    acc = [k for k in FEEDBACK_ACCURACY if data.series(k)[0].size]
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
    ax.set_title(f"commonsense action chosen (position bias {number(bias, '+.2f')})", fontsize=10)
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
