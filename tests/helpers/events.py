"""A run's events as two runs that should be identical are compared: wall-clock figures left out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from upbringing.curriculum.tracking import read_events


def comparable(run_dir: Path) -> list[dict[str, Any]]:
    """The run's events without the run_start row (times, versions) and the training speed."""
    rows = []
    for row in read_events(run_dir):
        if row["kind"] == "run_start":
            continue
        if row["kind"] == "metrics":
            row["metrics"].pop("train/steps_per_s", None)
        rows.append(row)
    return rows
