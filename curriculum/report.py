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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from upbringing.curriculum.checkpoints import latest_checkpoint
from upbringing.curriculum.figures import FIGURES, MARKERS
from upbringing.curriculum.moralchoice import SUITE as MORALCHOICE
from upbringing.curriculum.moralchoice import table_rows as moralchoice_rows
from upbringing.curriculum.rundata import RunData
from upbringing.curriculum.texttable import number
from upbringing.curriculum.tracking import read_json

REPORT_DIR = "report"
"""The report's folder inside the run folder."""


# ---------------------------------------------------------------------------------------------------- page
def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table_html(rows: Sequence[Sequence[Any]]) -> str:
    head, *body = rows
    out = ["<table><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in body]
    return "\n".join(out) + "</table>"


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
                f"{number(s['final_score'])} ({s['metric']})",
                violated or ("-" if s.get("violations") is None else "none"),
            ]
        )
        if with_feedback:
            fb = s.get("feedback") or {}
            rows[-1].append(
                f"{fb['queries_used']:.0f} of {fb['budget']:.0f}, {number(fb.get('rm_accuracy'), '.0%')}" if fb else "-"
            )
    return rows


def _event_rows(data: RunData) -> list[list[Any]]:
    rows: list[list[Any]] = [["global step", "event", "stage", "level", "evidence"]]
    for r in data.of_kind(*MARKERS):
        ev = r.get("evidence") or {}
        brief = ", ".join(
            f"{k}={number(v, '.3g') if isinstance(v, float) else v}" for k, v in ev.items() if k != "rule"
        )
        rows.append([f"{r['step']:,}", r["kind"].replace("_", " "), r.get("stage"), r.get("level", 0) + 1, brief])
    return rows


def _stability_rows(ev: Mapping[str, Any]) -> list[list[Any]] | None:
    s = ev.get("stability") or {}
    ref, shifted, ratio = s.get("reference_compliance"), s.get("shift_compliance"), s.get("all_shifts")
    if not ref or not ratio or not shifted:
        return None
    rows: list[list[Any]] = [["principle", "compliance in distribution", "under shift", "stability"]]
    for k in ref["principles"]:
        rows.append(
            [k, number(ref["principles"][k]), number(shifted["principles"].get(k)), number(ratio["principles"][k])]
        )
    rows.append(["overall", number(ref["overall"]), number(shifted["overall"]), number(ratio["overall"])])
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


__all__ = ["REPORT_DIR", "build_report", "log_to_wandb"]
