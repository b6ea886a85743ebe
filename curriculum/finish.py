"""The end of a run: the final held-out evaluation of every stage, the developmental summary, the retention matrix
and the cross-play matrices of multi-agent stages."""

from __future__ import annotations

from typing import Any

from upbringing.agents.base import Agent
from upbringing.agents.checkpoint import write_json_atomic
from upbringing.curriculum.factory import eval_seeds
from upbringing.curriculum.population import CROSSPLAY_FILE, crossplay, crossplay_rows
from upbringing.curriculum.runner import RETENTION_FILE, SUMMARY_FILE, Run
from upbringing.curriculum.tracking import jsonable


def finish(run: Run) -> dict[str, Any]:
    """After training: evaluate every stage at its last level on fresh held-out seeds, write the retention matrix,
    the cross-play matrices (multi-agent stages) and ``summary.json``, log the final scores and close the tracker.

    Returns:
        The developmental summary (as written to ``summary.json``).
    """
    names = [s.name for s in run.config.stages]
    final: dict[str, float | None] = {}
    violations: dict[str, dict[str, float]] = {}
    tension: dict[str, dict[str, float]] = {}
    for i, name in enumerate(names):
        if run.teacher.progress[i].skipped:
            final[name] = None
            continue
        result = run.evaluate(i, run.stages[i].last_level)
        final[name] = result.score
        sc = run.stages[i].constitution
        if sc is not None:
            held_out = sc.compliance(result.stats)
            violations[name] = held_out["violation_rate"]
            tension[name] = held_out["tension_rate"]
    stages = []
    for i, stage in enumerate(run.config.stages):
        p = run.teacher.progress[i]
        stages.append(
            {
                "name": stage.name,
                "env": stage.env,
                "mastered": p.mastered,
                "skipped": p.skipped,
                "steps_to_mastery": p.steps_to_mastery,
                "steps": p.steps,
                "level": p.level,
                "levels": len(run.stages[i].levels),
                "final_score": final[stage.name],
                "metric": run.stages[i].rule.metric,
                "violations": violations.get(stage.name),
                "tension": tension.get(stage.name) or None,  # hard x aspirational pairs pulling apart, per step
                "feedback": fb.summary() if (fb := run.stages[i].feedback) is not None else None,
            }
        )
    summary = {
        "name": run.config.name,
        "seed": run.config.seed,
        "teacher": run.teacher.name,
        "global_step": run.state.global_step,
        "stages": stages,
    }
    retention = {
        "stages": names,
        "after": [names[a] for a in run.state.retention_after],
        "matrix": run.state.retention,
    }
    write_json_atomic(run.run_dir / RETENTION_FILE, retention)
    if any(st.multi_agent for st in run.stages):
        crossplay_stages(run)
    summary = jsonable(summary)
    write_json_atomic(run.run_dir / SUMMARY_FILE, summary)
    tracker = run.tracker
    tracker.event("run_end", run.state.global_step, summary=summary)
    tracker.log({f"eval/{n}/final_score": v for n, v in final.items() if v is not None}, run.state.global_step)
    run.tracker.summary({f"final/{n}": v for n, v in final.items() if v is not None})
    run.tracker.close()
    return summary


def crossplay_stages(run: Run) -> dict[str, Any]:
    """Cross-play matrices of the multi-agent stages (the learners and every snapshot against the stage's
    scenario, each independent learner and each background player, with social metrics and exploitability):
    ``crossplay.json`` and W&B tables."""
    assert run.snapshots is not None
    snapshots: dict[str, Agent] = {}
    for snap in run.snapshots.available(run.state.global_step):
        snapshots[f"snapshot:{snap.name}"] = run.snapshots.agent(snap)
    out: dict[str, Any] = {}
    for i, stage in enumerate(run.config.stages):
        if not run.stages[i].multi_agent or run.teacher.progress[i].skipped:
            continue
        episodes = (stage.population.crossplay_episodes if stage.population else None) or stage.eval_episodes
        seeds = eval_seeds(run.config.seed + 2_000_003, i, 0, episodes)
        members = {**run.learner_names(i), **snapshots}
        factory = run.factory(i, run.stages[i].last_level)
        matrix = crossplay(factory, members, seeds, run.stages[i].rule.metric, run.stages[i].team)
        out[stage.name] = matrix
        columns, rows = crossplay_rows(stage.name, matrix)
        run.tracker.table(f"crossplay/{stage.name}", columns, rows, run.state.global_step)
        cells = matrix["cells"] + ([matrix["team"]] if "team" in matrix else [])
        metrics = {f"crossplay/{stage.name}/{c['member']}/{c['opponent']}/score": c["score"] for c in cells}
        metrics.update({f"crossplay/{stage.name}/{k}": v for k, v in matrix["exploitability"].items() if v is not None})
        run.tracker.log(metrics, run.state.global_step)
    write_json_atomic(run.run_dir / CROSSPLAY_FILE, jsonable(out))
    return out
