"""``upbringing sweep``: a grid of ordinary training runs, executed as Ray tasks.

A curriculum claim needs many runs (seeds x teachers x ablations). A sweep takes a config, a grid of config keys
(``--grid curriculum.teacher=sequential,direct``) and seeds, and runs every combination as the very run
``upbringing train CONFIG key=value ... --run-dir runs/<sweep>/<variant>`` would be: the same config resolution and
validation (:func:`upbringing.curriculum.checks.load_config`), run folder, checkpoints and W&B run. Each run is one
Ray task (Ray core, https://docs.ray.io/en/latest/ray-core/tasks.html: the scheduler places tasks by the resources
they ask for, on this machine or on a cluster joined with ``--address``); no home-made scheduler or queue.

Every variant is validated before any worker starts. A sweep started again finds its run folders: a run that
finished (``summary.json``) is never retrained, an interrupted or failed one resumes from its newest intact
checkpoint (the exact resume of :func:`upbringing.curriculum.launch.resume`). At the end the sweep writes
``sweep.json`` beside its runs, prints a table and compares the variants (``upbringing compare``).
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upbringing.agents.checkpoint import write_json_atomic
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.compare import compare_runs, format_comparison
from upbringing.curriculum.config import RunConfig, dump_config
from upbringing.curriculum.launch import resume, train
from upbringing.curriculum.raycluster import connect
from upbringing.curriculum.runner import CONFIG_FILE, SUMMARY_FILE
from upbringing.curriculum.texttable import text_table
from upbringing.curriculum.tracking import read_json
from upbringing.yamlfile import FileError, Problem, one_line

SWEEP_FILE = "sweep.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")  # characters a variant's folder name does not keep


@dataclass(frozen=True)
class Variant:
    """One run of the sweep: its grid values, its validated config and its run folder."""

    name: str  # the folder name, e.g. curriculum.teacher=direct,seed=1
    values: tuple[tuple[str, str], ...]  # (key, value) of each grid axis, seed last
    config: RunConfig
    run_dir: Path

    @property
    def status(self) -> str:
        """``finished`` (summary.json: never retrained), ``interrupted`` (resumes) or ``new``."""
        if (self.run_dir / SUMMARY_FILE).exists():
            return "finished"
        return "interrupted" if (self.run_dir / CONFIG_FILE).exists() else "new"


def _split_values(text: str) -> list[str]:
    """``a,b,[1,2]`` -> ``["a", "b", "[1,2]"]``: commas inside brackets or braces belong to a YAML value."""
    values, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += (c in "[{") - (c in "]}")
        if c == "," and depth == 0:
            values.append(text[start:i])
            start = i + 1
    values.append(text[start:])
    return [v.strip() for v in values]


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``--grid KEY=V1,V2`` arguments as (key, values) axes; a malformed one is a one-line error."""
    axes: list[tuple[str, list[str]]] = []
    for item in items:
        key, eq, rest = item.partition("=")
        key = key.strip()
        values = _split_values(rest) if eq else []
        if not key or not eq or not values or any(v == "" for v in values):
            raise FileError([Problem("--grid", f"expected KEY=VALUE1,VALUE2,... (got {item!r})")])
        if key in {k for k, _ in axes}:
            raise FileError([Problem("--grid", f"{key} is given twice; list all its values in one --grid")])
        if len(set(values)) != len(values):
            raise FileError([Problem("--grid", f"{key}: a value is listed twice (got {rest!r})")])
        axes.append((key, values))
    return axes


def parse_seeds(text: str) -> list[str]:
    """``--seeds 0,1,2`` as seed values (validated with the config: a seed is a config key)."""
    seeds = [s.strip() for s in text.split(",")]
    if not all(re.fullmatch(r"\d+", s) for s in seeds) or len(set(seeds)) != len(seeds):
        raise FileError([Problem("--seeds", f"expected distinct non-negative integers, e.g. 0,1,2 (got {text!r})")])
    return seeds


def parse_resources(items: Sequence[str]) -> dict[str, Any]:
    """``--resources CPU=2,GPU=0.5,memory=4e9,my_label=1`` as Ray task options (what one run asks for)."""
    options: dict[str, Any] = {}
    custom: dict[str, float] = {}
    for item in ",".join(items).split(","):
        name, eq, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not name.strip() or not eq or amount < 0:
            raise FileError([Problem("--resources", f"expected NAME=AMOUNT, e.g. CPU=2,GPU=0.5 (got {item!r})")])
        key = {"cpu": "num_cpus", "gpu": "num_gpus", "memory": "memory"}.get(name.strip().lower())
        if key is not None:
            options[key] = amount
        else:
            custom[name.strip()] = amount
    if custom:
        options["resources"] = custom
    return options


def _variant_name(values: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{k}={_UNSAFE.sub('_', v)}" for k, v in values) or "default"


def plan(
    config: str | Path,
    overrides: Sequence[str],
    grid: Sequence[tuple[str, list[str]]],
    seeds: Sequence[str] | None,
    run_root: Path | None,
) -> tuple[Path, list[Variant]]:
    """Every variant of the sweep, validated (envs, constitutions, model) before anything runs.

    Returns the sweep's folder (``--run-dir``, else ``runs/<config name>``) and its variants.

    Raises:
        FileError: every distinct problem of every variant, once; a run folder holding another config's run.
    """
    if seeds is not None and any(k == "seed" for k, _ in grid):
        raise FileError([Problem("--grid", "seed is swept with --seeds, not --grid")])
    axes = [*grid, ("seed", list(seeds))] if seeds is not None else list(grid)
    if not axes:
        raise FileError([Problem("upbringing sweep", "nothing to sweep: give --grid KEY=V1,V2 and/or --seeds 0,1,2")])
    combos: list[list[tuple[str, str]]] = [[]]
    for key, values in axes:
        combos = [[*c, (key, v)] for c in combos for v in values]
    base = load_config(config, list(overrides), check_envs=False)  # the sweep's name, and a bad file said once
    root = run_root if run_root is not None else Path("runs") / base.name
    named = [k for k, _ in grid]
    problems: list[Problem] = []
    variants: list[Variant] = []
    for combo in combos:
        extra = [f"{k}={v}" for k, v in combo]
        label = _variant_name([(k, v) for k, v in combo if k != "seed"])
        if "name" not in named and label != "default":  # seeds of one variant share a name: compare groups them
            extra.append(f"name={base.name}-{label}")
        try:
            cfg = load_config(config, [*overrides, *extra])
        except FileError as err:
            problems += [p for p in err.problems if p not in problems]
            continue
        variants.append(Variant(_variant_name(combo), tuple(combo), cfg, root / _variant_name(combo)))
    names = [v.name for v in variants]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        problems.append(Problem("--grid", f"values that differ only in characters a folder name drops: {clashes}"))
    for v in variants:
        saved = v.run_dir / CONFIG_FILE
        if saved.is_file() and saved.read_text(encoding="utf-8") != dump_config(v.config):
            problems.append(Problem(str(v.run_dir), "holds a run of another config; give the sweep a new --run-dir"))
    if problems:
        raise FileError(problems)
    return root, variants


def run_variant(config: RunConfig, run_dir: str) -> dict[str, Any]:
    """One run of the sweep (the body of its Ray task): train, or resume an interrupted run; never raises."""
    start = time.perf_counter()
    path = Path(run_dir)
    resumed = (path / CONFIG_FILE).exists()
    try:
        summary = resume(path, progress=False) if resumed else train(config, path, progress=False)[1]
        outcome: dict[str, Any] = {"status": "resumed" if resumed else "trained", "summary": summary}
    except FileError as err:
        outcome = {"status": "failed", "error": "; ".join(str(p) for p in err.problems)}
    except Exception as err:  # a crash of one run must not stop the others; the sweep reports it
        outcome = {
            "status": "failed",
            "error": one_line(f"{type(err).__name__}: {err}"),
            "traceback": traceback.format_exc(),
        }
    outcome["seconds"] = time.perf_counter() - start
    return outcome


def run_sweep(
    config: str | Path,
    overrides: Sequence[str],
    grid: Sequence[tuple[str, list[str]]],
    seeds: Sequence[str] | None = None,
    *,
    run_root: Path | None = None,
    address: str | None = None,
    max_concurrent: int | None = None,
    resources: dict[str, Any] | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every variant as a Ray task (finished ones are not run again); write and return ``sweep.json``'s record.

    Args:
        config: The base config file.
        overrides: ``key=value`` overrides applied to every variant.
        grid: (key, values) axes; every combination is a variant.
        seeds: Seeds, one run per variant each (None: the config's seed).
        run_root: The sweep's folder (default ``runs/<config name>``).
        address: A Ray cluster to join (default: a local Ray sized to the machine).
        max_concurrent: At most this many runs at once (default: as many as the resources allow).
        resources: Ray task options of one run (default: ``num_cpus`` = the config's torch threads).
        say: Where progress lines go.
    """
    root, variants = plan(config, overrides, grid, seeds, run_root)
    outcomes: dict[str, dict[str, Any]] = {}
    todo = []
    for v in variants:
        if v.status == "finished":
            outcomes[v.name] = {"status": "done before", "summary": read_json(v.run_dir / SUMMARY_FILE, "summary")}
        else:
            todo.append(v)
    say(f"sweep {root}: {len(variants)} runs, {len(variants) - len(todo)} finished before, {len(todo)} to run")
    start = time.perf_counter()
    if todo:  # Ray starts only when there is something to run
        ray = connect(address, "upbringing sweep")
        options: dict[str, Any] = {"num_cpus": max(v.config.threads for v in variants), "max_retries": 0}
        options.update(resources or {})
        task = ray.remote(run_variant).options(**options)
    pending: dict[Any, Variant] = {}
    limit = max_concurrent or len(todo) or 1
    while todo or pending:
        while todo and len(pending) < limit:
            v = todo.pop(0)
            pending[task.remote(v.config, str(v.run_dir))] = v
        done, _ = ray.wait(list(pending), num_returns=1)
        v = pending.pop(done[0])
        outcomes[v.name] = ray.get(done[0])
        say(f"  {v.name}: {outcomes[v.name]['status']} ({outcomes[v.name]['seconds']:.0f} s)")
    record = _record(root, variants, outcomes, time.perf_counter() - start, grid, seeds)
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / SWEEP_FILE, record)
    return record


def _record(
    root: Path,
    variants: Sequence[Variant],
    outcomes: dict[str, dict[str, Any]],
    seconds: float,
    grid: Sequence[tuple[str, list[str]]],
    seeds: Sequence[str] | None,
) -> dict[str, Any]:
    runs = []
    for v in variants:
        out = outcomes[v.name]
        row: dict[str, Any] = {
            "variant": v.name,
            "values": dict(v.values),
            "run_dir": str(v.run_dir),
            "status": out["status"],
            "seconds": out.get("seconds"),
        }
        summary = out.get("summary")
        if summary is not None:
            row["global_step"] = summary["global_step"]
            row["mastered"] = [s["name"] for s in summary["stages"] if s["mastered"]]
            row["final_scores"] = {s["name"]: s["final_score"] for s in summary["stages"]}
            row["metric"] = summary["stages"][-1]["metric"]
        for key in ("error", "traceback"):
            if key in out:
                row[key] = out[key]
        runs.append(row)
    grid_keys = [k for k, _ in grid]
    group_by = "teacher" if set(grid_keys) <= {"curriculum.teacher"} else "name"
    finished = [Path(r["run_dir"]) for r in runs if r["status"] != "failed"]
    comparison: dict[str, Any] | None = None
    compare_error = None
    if len(finished) > 1:
        try:
            comparison = compare_runs(finished, group_by=group_by)
        except FileError as err:
            compare_error = "; ".join(str(p) for p in err.problems)
    return {
        "sweep": str(root),
        "grid": {k: vs for k, vs in grid},
        "seeds": None if seeds is None else [int(s) for s in seeds],
        "wall_seconds": seconds,
        "runs": runs,
        "compare": comparison,
        "compare_group_by": group_by,
        "compare_error": compare_error,
    }


def format_sweep(record: dict[str, Any]) -> str:
    """The sweep's table (one row per run) and the comparison of its variants."""
    rows = [("variant", "status", "env steps", "mastered", "final score (last stage)", "minutes")]
    for r in record["runs"]:
        scores = r.get("final_scores") or {}
        last = list(scores.values())[-1] if scores else None
        score = "-" if last is None else f"{last:.3f} ({r['metric']})"
        mastered = f"{len(r['mastered'])}/{len(scores)}" if "mastered" in r else "-"
        status = r["status"] if r["status"] != "failed" else f"failed: {r['error']}"
        minutes = "-" if r.get("seconds") is None else f"{r['seconds'] / 60:.1f}"
        rows.append((r["variant"], status, f"{r.get('global_step', 0):,}", mastered, score, minutes))
    lines = [f"Sweep {record['sweep']} ({len(record['runs'])} runs, {record['wall_seconds'] / 60:.1f} min)"]
    lines += text_table(rows)
    if record["compare"] is not None:
        lines += ["", format_comparison(record["compare"])]
    elif record["compare_error"]:
        lines.append(f"no comparison: {record['compare_error']}")
    lines.append(f"written: {Path(record['sweep']) / SWEEP_FILE}")
    return "\n".join(lines)
