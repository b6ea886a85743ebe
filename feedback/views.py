"""What the feedback page shows, as data: a query's two excerpts step by step, pictures of physics states, and how
often raters agree with each other, the simulated raters and the reward model. No HTTP here
(:mod:`upbringing.feedback.web` serves it)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: pictures are drawn into PNG bytes, never a window
import matplotlib.pyplot as plt
import numpy as np
from upbringing.feedback.answers import (
    PREFERENCES,
    Query,
    load_answers,
    query_files,
)
from upbringing.feedback.data import Segment, read_jsonl

_FAMILIES = ("physics", "social", "moral")


# ------------------------------------------------------------------------------------------------- what is shown
def family(segment: Segment) -> str:
    """The env family (``physics``, ``social``, ``moral``) from the env id's prefix; empty when unknown."""
    prefix = segment.env.split("/", 1)[0]
    return prefix if prefix in _FAMILIES else ""


def segment_view(segment: Segment) -> dict[str, Any]:
    """A segment as the page shows it: per step the situation, the action taken, its reward and events.

    After the first step, lines the previous situation already said are left out (``repeated`` counts them): the
    social worlds restate the rules every round and the stories their title, which would bury what changed.
    """
    steps = []
    before: set[str] = set()
    for t in range(len(segment)):
        text = segment.texts[t] if t < len(segment.texts) else ""
        situation, sep, action = text.rpartition("\n-> ")
        if not sep:
            situation, action = text, ""
        if not text.strip():  # numeric envs: the observation stands in for the text
            obs = segment.obs[t] if t < len(segment.obs) else []
            situation = "observation [" + ", ".join(f"{x:.3g}" for x in obs) + "]"
            action = f"action {segment.actions[t]}"
        events = segment.events[t] if t < len(segment.events) else {}
        lines = situation.strip().splitlines()
        kept = [line for line in lines if line.strip() not in before]
        before = {line.strip() for line in lines if line.strip()}
        steps.append(
            {
                "situation": "\n".join(kept).strip(),
                "repeated": sum(1 for line in lines if line.strip()) - sum(1 for line in kept if line.strip()),
                "action": action.strip(),
                "reward": round(float(segment.rewards[t]), 4) if t < len(segment.rewards) else 0.0,
                "events": {k: round(float(v), 4) for k, v in events.items() if v},
            }
        )
    return {
        "stage": segment.stage,
        "env": segment.env,
        "family": family(segment),
        "level": segment.level,
        "steps": steps,
        "total_reward": round(float(sum(segment.rewards)), 4),
        "picture": family(segment) == "physics" and bool(segment.scenes or segment.obs),
    }


def state_picture(segment: Segment, title: str) -> bytes:
    """A PNG of a physics segment: the scene before each step and after the last (the env's bodies as recorded in
    ``segment.scenes``), events in red; for segments recorded without scenes, each step's numeric state as a row."""
    if segment.scenes:
        return _scene_strip(segment, title)
    obs = np.asarray(segment.obs, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(4.2, 0.35 * len(obs) + 1.1), dpi=100)
    ax.imshow(obs, cmap="coolwarm", vmin=-1.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(obs)), [str(t + 1) for t in range(len(obs))], fontsize=7)
    ax.set_xlabel("state feature", fontsize=8)
    ax.set_ylabel("step", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title, fontsize=9)
    for t, events in enumerate(segment.events[: len(obs)]):
        names = ", ".join(k for k, v in events.items() if v)
        if names:
            ax.annotate(names, (1.01, t), xycoords=("axes fraction", "data"), fontsize=7, color="crimson", va="center")
    return _png(fig)


def _png(fig: Any) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _scene_strip(segment: Segment, title: str) -> bytes:
    scenes = segment.scenes
    # Frame what matters: every body and post, not the floor lines that run far beyond the table.
    pts = np.array(
        [p for scene in scenes for sh in scene if sh["kind"] != "segment" or not sh["static"] for p in sh["points"]]
        or [[0.0, 0.0], [1.0, 1.0]]
    )
    pad = 0.25 + max((sh["radius"] for scene in scenes for sh in scene), default=0.0)
    x0, x1 = pts[:, 0].min() - pad, pts[:, 0].max() + pad
    y0, y1 = min(pts[:, 1].min(), 0.0) - 0.05, pts[:, 1].max() + pad
    n = len(scenes)
    cols = min(n, 3)
    rows = -(-n // cols)
    aspect = (y1 - y0) / max(x1 - x0, 1e-6)
    fig, axes = plt.subplots(
        rows, cols, figsize=(6.0, rows * (6.0 / cols) * min(max(aspect, 0.35), 1.2) + 0.5), dpi=100
    )
    axes = np.atleast_1d(axes).ravel()
    for t, ax in enumerate(axes):
        ax.set_axis_off()
        if t >= n:
            continue
        for sh in scenes[t]:
            colour = "#8c8c8c" if sh["static"] else ("#bfe8f0" if sh["glass"] else "#4a78b5")
            edge = "crimson" if sh["broken"] else "#333333"
            xy = np.asarray(sh["points"], dtype=np.float64)
            if sh["kind"] == "poly":
                ax.add_patch(plt.Polygon(xy, closed=True, facecolor=colour, edgecolor=edge, linewidth=0.6))
            elif sh["kind"] == "circle":
                ax.add_patch(plt.Circle(xy[0], sh["radius"], facecolor=colour, edgecolor=edge, linewidth=0.6))
            else:
                ax.plot(xy[:, 0], xy[:, 1], color="#555555", linewidth=1.5)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        label = f"before step {t + 1}" if t < len(segment) else "at the end"
        ax.set_title(label, fontsize=8)
        events = segment.events[t - 1] if 0 < t <= len(segment.events) else {}
        names = ", ".join(k for k, v in events.items() if v)
        if names:  # what the step before this picture set off
            ax.text(0.5, -0.02, names, transform=ax.transAxes, ha="center", va="top", fontsize=7, color="crimson")
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def query_view(query: Query) -> dict[str, Any]:
    """What the page needs to show one query."""
    return {"id": query.query_id, "a": segment_view(query.pref.a), "b": segment_view(query.pref.b)}


# ----------------------------------------------------------------------------------------------------- agreement
@dataclass(frozen=True)
class PairAgreement:
    """How often two label sources agree on the queries both answered with a label.

    Attributes:
        first: A human rater (``human:<name>``).
        second: Another human, a simulated rater or ``reward model``.
        n: Queries both labelled (for the reward model: the human's strict preferences where it had a prediction).
        agree: Share of them with the same label (reward model: the side it gave more than 0.5).
    """

    first: str
    second: str
    n: int
    agree: float


def agreement(run_dir: str | Path) -> tuple[dict[str, int], list[PairAgreement]]:
    """Answers per human rater, and agreement of each human with every other label source of the run."""
    labels: dict[str, dict[str, float]] = {}
    model: dict[str, float] = {}
    counts: dict[str, int] = {}
    for path in query_files(run_dir):
        rows = load_answers(path.parent)
        if (path.parent / PREFERENCES).exists():
            rows += list(read_jsonl(path.parent / PREFERENCES))
        for row in rows:
            if row.rater.startswith("human:"):
                counts[row.rater] = counts.get(row.rater, 0) + 1
            if row.label is not None:
                labels.setdefault(row.rater, {})[row.query_id] = float(row.label)
        for q in read_jsonl(path):
            p = q.meta.get("rm_p_a")
            if isinstance(p, int | float):
                model[q.query_id] = float(p)
    out: list[PairAgreement] = []
    humans = sorted(r for r in counts)
    others = sorted(r for r in labels if not r.startswith("human:"))
    for h in humans:
        mine = labels.get(h, {})
        for o in [*humans, *others]:
            if o == h:
                continue
            common = [q for q in mine if q in labels[o]] if o in labels else []
            same = sum(mine[q] == labels[o][q] for q in common)
            out.append(PairAgreement(h, o, len(common), same / len(common) if common else float("nan")))
        strict = [q for q, lab in mine.items() if lab != 0.5 and q in model]
        same = sum((model[q] > 0.5) == (mine[q] == 1.0) for q in strict)
        out.append(PairAgreement(h, "reward model", len(strict), same / len(strict) if strict else float("nan")))
    return counts, out
