"""Starting, resuming and reopening runs in their run folders.

:func:`train` creates a run folder and trains a validated config in it; :func:`resume` continues an interrupted run
from its newest intact checkpoint, exactly as the uninterrupted run would have gone on; :func:`load_run` reopens a
run with its agent restored, for evaluation and inspection. The training loop itself is :class:`Run`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from upbringing.agents.checkpoint import write_json_atomic
from upbringing.curriculum.checkpoints import (
    MANIFEST,
    checkpoint_damage,
    checkpoints,
    intact_checkpoints,
    latest_checkpoint,
    remove_partial_checkpoints,
)
from upbringing.curriculum.config import RunConfig, dump_config, run_config
from upbringing.curriculum.finish import finish
from upbringing.curriculum.runner import CONFIG_FILE, SUMMARY_FILE, Run
from upbringing.curriculum.tracking import VERSIONS_FILE, installed_versions, version_changes
from upbringing.yamlfile import FileError, Problem, one_line


def default_run_dir(config: RunConfig, root: Path = Path("runs")) -> Path:
    """``runs/<name>-<timestamp>``."""
    return root / f"{config.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def load_run(run_dir: Path, checkpoint: Path | None = None) -> Run:
    """A run folder's run with its agent and curriculum state restored from ``checkpoint`` (default: the latest),
    for evaluating or inspecting a trained agent (:meth:`Run.evaluate_stage`)."""
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        siblings = [p for p in checkpoint.parent.iterdir() if p.is_dir()] if checkpoint.parent.is_dir() else []
        legacy = not (run_dir / VERSIONS_FILE).exists() and not any((p / MANIFEST).exists() for p in siblings)
        damage = None if legacy else checkpoint_damage(checkpoint)
        if damage is not None:
            raise FileError([Problem(str(checkpoint), f"damaged checkpoint: {damage}")])
    else:
        checkpoint = latest_checkpoint(run_dir, say=_stderr)
    if checkpoint is None:
        message = "the run has no intact checkpoint" if checkpoints(run_dir) else "the run has no checkpoint yet"
        raise FileError([Problem(str(run_dir), message)])
    run = Run(config, run_dir, progress=False)
    try:
        run.load_checkpoint(checkpoint)
    except Exception as err:  # verified, yet not loadable (a legacy checkpoint, a config changed by hand)
        message = f"checkpoint cannot be loaded ({type(err).__name__}: {one_line(str(err))})"
        raise FileError([Problem(str(checkpoint), message)]) from None
    return run


def train(config: RunConfig, run_dir: Path | None = None, *, progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Train ``config`` in a new run folder; return the folder and the developmental summary.

    The config must already be validated (:func:`upbringing.curriculum.config.load_config`); the run folder is created
    only now, so a bad config never leaves one behind.
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    if run_dir.exists() and not run_dir.is_dir():
        raise FileError([Problem(str(run_dir), "not a folder: give --run-dir a new or empty folder")])
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileError([Problem(str(run_dir), "run folder already exists and is not empty; use `upbringing resume`")])
    run = Run(config, run_dir, progress=progress)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    write_json_atomic(run_dir / VERSIONS_FILE, installed_versions())
    run.open_tracker()
    run.tracker.event("run_start", 0, name=config.name, seed=config.seed, **run.run_record())
    run.run()
    return run_dir, finish(run)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def resume(run_dir: Path, *, progress: bool = True, say: Callable[[str], None] = _stderr) -> dict[str, Any]:
    """Continue an interrupted run from its newest intact checkpoint; return the developmental summary.

    Every checkpoint is verified against its manifest (size and SHA-256 of each file) before it is loaded; a damaged
    one (a truncated or corrupted file, as a full disk or a kill during a copy leaves it) is skipped with one line to
    ``say``, and the run continues exactly from the newest intact one. Packages whose versions differ from the ones
    the run started with are named, one line each (a warning: the run goes on)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise FileError([Problem(str(run_dir), f"not a run folder (no {CONFIG_FILE})")])
    if (run_dir / SUMMARY_FILE).exists():
        raise FileError([Problem(str(run_dir), "this run already finished (summary.json exists)")])
    config = run_config(run_dir)
    for line in version_changes(run_dir):
        say(f"warning: {line}")
    damaged: list[str] = []
    run = None
    engine = None
    for path, damage in intact_checkpoints(run_dir):
        if damage is None:
            run = Run(config, run_dir, progress=progress)  # a fresh one for each try: loading changes its state
            try:
                engine = run.load_checkpoint(path)
            except Exception as err:  # verified, yet not loadable (a legacy checkpoint, a config changed by hand)
                damage = f"cannot be loaded ({type(err).__name__}: {one_line(str(err))})"
            else:
                if damaged:
                    say(f"resuming from {path.name}")
                break
        damaged.append(f"{path.name}: {damage}")
        say(f"warning: skipping damaged checkpoint {path.name}: {damage}")
    if engine is None and damaged:
        raise FileError(
            [
                Problem(
                    str(run_dir),
                    f"no intact checkpoint to resume from ({'; '.join(damaged)}); "
                    "start the run again with `upbringing train`",
                )
            ]
        )
    if engine is None:
        run = Run(config, run_dir, progress=progress)
    assert run is not None
    remove_partial_checkpoints(run_dir)  # half-written checkpoints of the interrupted process
    if engine is None:
        run.open_tracker(events_offset=0)
        run.tracker.event("run_start", 0, name=config.name, seed=config.seed, **run.run_record())
    else:
        run.open_tracker(run_id=engine["wandb_run_id"], events_offset=engine["events_offset"])
    run.run()
    return finish(run)
