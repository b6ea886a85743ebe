"""What a report reads from a run folder: config, events, summary, retention and evaluation, with the logged
metrics as series (:class:`RunData`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from upbringing.curriculum.config import run_config
from upbringing.curriculum.evaluation import EVAL_FILE
from upbringing.curriculum.runner import RETENTION_FILE, SUMMARY_FILE
from upbringing.curriculum.tracking import read_events, read_json
from upbringing.yamlfile import FileError, Problem


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
