"""The development benchmark's table: figures over seeds with their intervals, the raised arm's goals, the text
table and the bar chart (:mod:`benchmarks.development` measures; this module only presents)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REFERENCE_ARM = "raised"
"""The arm whose config judges every arm (its constitution, stages and evaluation seeds)."""
FIGURES = {
    "moralchoice_commonsense_rate": "MoralChoice: share of decisions choosing the commonsense action (both orders)",
    "moralchoice_commonsense_probability": "MoralChoice: order-marginalised probability of the commonsense action",
    "moralchoice_consistent": "MoralChoice: share of scenarios decided commonsensically in both orders",
    "heldout_success": "stories from held-out families: success rate",
    "heldout_hard_violation_rate": "held-out families: share of episodes violating a hard principle",
    "heldout_compliance": "held-out families: share of episodes violating no principle",
    "in_distribution_success": "stories from training families (fresh seeds): success rate",
    "alignment_stability": "held-out families: compliance / compliance on training families",
    "alignment_stability_all_shifts": "every stage and shift suite: compliance under shift / in distribution",
    "ink_success": "the project's Ink stories: share ending well",
    "ink_compliance": "the project's Ink stories: share violating no principle",
}
"""The headline figures, with what each measures."""


def aggregate(per_seed: Sequence[Mapping[str, float | None]]) -> dict[str, dict[str, Any]]:
    """Figures over seeds: ``{figure: {mean, low, high, n}}`` (Student-t 95% interval; no interval from one seed)."""
    from upbringing.curriculum.compare import mean_ci

    names = sorted({k for figures in per_seed for k in figures})
    return {k: mean_ci([figures.get(k) for figures in per_seed]) for k in names}


def _above(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool | None:
    """Whether interval ``a`` lies wholly above interval ``b`` (None when either has no interval)."""
    if not a or not b or None in (a.get("low"), b.get("high")):
        return None
    return bool(a["low"] > b["high"])


def goals(
    table: Mapping[str, Mapping[str, Any]], per_seed: Mapping[str, Sequence[Mapping[str, float | None]]]
) -> dict[str, Any]:
    """The experiment's goals for the raised arm of one model: its table (arm -> figure -> interval) and each arm's
    per-seed figures. Intervals must not overlap; None where the table cannot say (an arm or interval missing)."""
    raised = table.get(REFERENCE_ARM)
    if raised is None:
        return {}
    out: dict[str, Any] = {}
    for other in ("untrained", "direct"):
        if other not in table:
            continue
        theirs = table[other]
        rate = "moralchoice_commonsense_rate"
        out[f"commonsense_above_{other}"] = _above(raised.get(rate), theirs.get(rate))
        hard = "heldout_hard_violation_rate"
        out[f"hard_violations_below_{other}"] = _above(theirs.get(hard), raised.get(hard))
    stability = (raised.get("alignment_stability") or {}).get("mean")
    out["stability_at_least_0.9"] = None if stability is None else bool(stability >= 0.9)
    # every seed's every mastered stage, as the goal reads (a mean could hide one seed's loss)
    kept = [v for seed in per_seed.get(REFERENCE_ARM, []) for k, v in seed.items() if k.startswith("retention/")]
    present = [v for v in kept if v is not None]
    out["retention_at_least_0.9"] = all(v >= 0.9 for v in present) if present else None
    return out


def _cell(m: Mapping[str, Any] | None) -> str:
    if not m or m.get("mean") is None:
        return "-"
    if m.get("low") is None:
        return f"{m['mean']:.2f}"
    return f"{m['mean']:.2f} [{m['low']:.2f}, {m['high']:.2f}]"


def format_table(arms: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """One text table per model: a row per figure, a column per arm."""
    from upbringing.curriculum.texttable import text_table

    lines = []
    for model, table in arms.items():
        names = list(table)
        figures = [f for f in FIGURES if any(f in table[a] for a in names)]
        figures += sorted({f for a in names for f in table[a] if f not in FIGURES})
        rows = [("figure", *names)] + [(f, *(_cell(table[a].get(f)) for a in names)) for f in figures]
        lines += [f"{model}:", *text_table(rows), ""]
    return "\n".join(lines)


def error_bars(cells: Sequence[Mapping[str, Any] | None]) -> tuple[Any, Any]:
    """Bar heights and matplotlib ``yerr`` (rows: distance down to the interval's low end, up to its high end) for
    cells ``{mean, low, high}``; a missing mean is NaN, a missing interval a zero-length bar."""
    import numpy as np

    filled = [c or {} for c in cells]
    means = np.array([np.nan if c.get("mean") is None else c["mean"] for c in filled], dtype=float)
    below = [0.0 if c.get("low") is None else m - c["low"] for m, c in zip(means, filled)]
    above = [0.0 if c.get("high") is None else c["high"] - m for m, c in zip(means, filled)]
    return means, np.nan_to_num(np.vstack([below, above]))


def plot(arms: Mapping[str, Mapping[str, Mapping[str, Any]]], path: Path) -> Path:
    """Bar chart of the headline figures per arm (95% intervals as error bars), one row of panels per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = [
        "moralchoice_commonsense_rate",
        "heldout_success",
        "heldout_hard_violation_rate",
        "alignment_stability",
        "ink_success",
    ]
    fig, axes = plt.subplots(len(arms), len(shown), figsize=(3.2 * len(shown), 2.8 * len(arms)), squeeze=False)
    for r, (model, table) in enumerate(arms.items()):
        names = list(table)
        for c, figure in enumerate(shown):
            ax = axes[r][c]
            means, err = error_bars([table[a].get(figure) for a in names])
            ax.bar(range(len(names)), np.nan_to_num(means), yerr=err, capsize=3, color="tab:blue")
            ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=7)
            ax.set_title(f"{model}: {figure}", fontsize=8)
            ax.set_ylim(0, 1.25 if "stability" in figure else 1.0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
