"""Tracking: every run writes a local events JSONL, and mirrors metrics to Weights & Biases.

W&B runs offline by default (files in the run folder, no account or network needed; ``wandb sync`` uploads them
later), online when the config asks, or not at all. The global env step is the x-axis of every metric
(``global_step``), so a resumed run continues its curves where the checkpoint left them.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import re
import secrets
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from upbringing.yamlfile import FileError, Problem

EVENTS_FILE = "events.jsonl"
VERSIONS_FILE = "versions.json"


def installed_versions() -> dict[str, Any]:
    """Python's version and the version of every installed distribution (``importlib.metadata``), by normalised
    name: what a run records in ``versions.json`` so that it can be told apart from a run on other versions."""
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata is not None else None
        if not name:
            continue
        packages.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": dict(sorted(packages.items())),
    }


def version_changes(run_dir: Path, now: dict[str, Any] | None = None) -> list[str]:
    """One line per package (and Python) whose version differs from the one ``run_dir`` recorded when it started;
    empty when the run recorded none (a run from before versions were recorded) or nothing differs."""
    try:
        then = json.loads((Path(run_dir) / VERSIONS_FILE).read_text(encoding="utf-8"))
        before = dict(then["packages"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    now = now if now is not None else installed_versions()
    after = now["packages"]
    lines = []
    if then.get("python") != now["python"]:
        lines.append(f"python {now['python']} now, {then.get('python')} when the run started")
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None:
            lines.append(f"{name} {new} now, not installed when the run started")
        elif new is None:
            lines.append(f"{name} not installed now, {old} when the run started")
        else:
            lines.append(f"{name} {new} now, {old} when the run started")
    return lines


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the source tree Upbringing runs from, or None outside a git checkout."""
    where = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as None and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):
        return jsonable(value.item())
    return value


class Tracker:
    """Writes metrics and curriculum events to ``<run_dir>/events.jsonl`` and to W&B.

    Args:
        run_dir: The run folder.
        mode: ``offline``, ``online`` or ``off`` (W&B).
        project: W&B project.
        entity: W&B entity, or None.
        name: Run name.
        config: The resolved config (logged as the W&B run config).
        run_id: W&B run id to resume, or None for a new run.
        events_offset: Truncate the events file to this many bytes first (resume drops what the killed run wrote
            after its last checkpoint, so the file matches an uninterrupted run's).
    """

    def __init__(
        self,
        run_dir: Path,
        mode: Literal["offline", "online", "off"],
        project: str,
        entity: str | None,
        name: str,
        config: dict[str, Any],
        run_id: str | None = None,
        events_offset: int | None = None,
    ):
        self.run_dir = run_dir
        path = run_dir / EVENTS_FILE
        if events_offset is not None and path.exists():
            with path.open("r+b") as f:
                f.truncate(events_offset)
        self._events = path.open("a", encoding="utf-8")
        self._wandb = None
        self.run_id = run_id
        if mode != "off":
            os.environ.setdefault("WANDB_SILENT", "true")  # no banners or hints in the user's terminal
            import wandb

            settings = wandb.Settings(silent=True, console="off", x_disable_stats=True, disable_git=True)

            def start(run_id: str) -> Any:
                return wandb.init(
                    project=project,
                    entity=entity,
                    name=name,
                    id=run_id,
                    resume="allow",
                    dir=str(run_dir),
                    mode=mode,
                    config=config,
                    settings=settings,
                )

            if run_id is None:
                self._wandb = start(secrets.token_hex(6))
            else:
                self._wandb = self._resume(start, run_id)
            self._wandb.define_metric("global_step")
            self._wandb.define_metric("*", step_metric="global_step")
            self.run_id = self._wandb.id

    @staticmethod
    def _resume(start: Any, run_id: str, wait_s: float = 20.0) -> Any:
        """Continue W&B run ``run_id``. A process killed a moment ago may leave W&B's service holding the run for a
        few seconds ("run ID ... is in use"): wait for it, then fall back to a new W&B run (the run folder, not W&B,
        is the record the resumed training continues; the new run's config names the one it continues)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return start(run_id)
            except Exception as err:  # wandb raises its own error types, which vary across versions
                if "in use" not in str(err):
                    raise
                if time.monotonic() > deadline:
                    run = start(secrets.token_hex(6))
                    run.config.update({"continues_wandb_run": run_id}, allow_val_change=True)
                    return run
                time.sleep(1.0)

    @property
    def events_offset(self) -> int:
        """Bytes written to the events file so far (saved with each checkpoint)."""
        self._events.flush()
        return self._events.tell()

    def event(self, kind: str, step: int, **data: Any) -> None:
        """Append one event (``metrics``, ``evaluation``, ``promotion``, ...) to the JSONL file."""
        row = jsonable({"kind": kind, "step": int(step), **data})
        self._events.write(json.dumps(row, sort_keys=True) + "\n")
        self._events.flush()

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Log namespaced metrics at global env step ``step``."""
        self.event("metrics", step, metrics=metrics)
        if self._wandb is not None:
            self._wandb.log({**metrics, "global_step": int(step)})

    def table(self, key: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        """Log a W&B table (sample episode transcripts); the rows also go to the events file."""
        self.event("table", step, key=key, columns=columns, rows=rows)
        if self._wandb is not None:
            import wandb

            self._wandb.log({key: wandb.Table(columns=list(columns), data=rows), "global_step": int(step)})

    def summary(self, values: dict[str, Any]) -> None:
        """Set W&B summary values (final scores)."""
        if self._wandb is not None:
            for k, v in values.items():
                self._wandb.summary[k] = v

    def close(self) -> None:
        """Flush and close; finish the W&B run."""
        self._events.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def read_events(run_dir: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The events of a run folder, optionally only those of one ``kind``."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise FileError([Problem(str(path), f"cannot read file: {err}")]) from None
    lines = text.split("\n")
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            if i == len(lines):  # the last line, cut short: a process killed while writing it
                break
            raise FileError([Problem(str(path), "damaged run folder: not a JSON event", line=i)]) from None
        if not isinstance(row, dict) or not isinstance(row.get("kind"), str) or not isinstance(row.get("step"), int):
            raise FileError([Problem(str(path), "damaged run folder: not an event (kind, step, ...)", line=i)])
        rows.append(row)
    return [r for r in rows if kind is None or r["kind"] == kind]


def read_json(path: Path, what: str = "file") -> Any:
    """A JSON file of a run folder; :class:`~upbringing.yamlfile.FileError` when it is missing or damaged."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileError([Problem(str(path), f"{what} not found")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise FileError([Problem(str(path), f"cannot read file: {err}")]) from None
    except ValueError as err:
        line = getattr(err, "lineno", None)
        raise FileError([Problem(str(path), f"damaged run folder: not valid JSON ({err})", line=line)]) from None


# W&B's offline .wandb file is a LevelDB-style log: a 7-byte header, then 32 KiB blocks of chunks, each with a 7-byte
# header (crc32c: u32, length: u16, type: u8 full/first/middle/last), holding serialized ``Record`` protobufs.
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_wandb_records(path: str | Path) -> Iterator[Any]:
    """Yield the ``wandb_internal_pb2.Record`` messages of an offline ``.wandb`` file (for tests and reports)."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B transaction log")
    pos = 7
    pending = b""
    while pos + 7 <= len(data):
        left_in_block = _BLOCK - (pos % _BLOCK)
        if left_in_block < 7:
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        chunk = data[pos : pos + length]
        pos += length
        if kind == 0 and length == 0:
            pos += _BLOCK - (pos % _BLOCK) if pos % _BLOCK else 0
            continue
        if kind == _FULL:
            pending = b""
            payload = chunk
        elif kind == _FIRST:
            pending = chunk
            continue
        elif kind == _MIDDLE:
            pending += chunk
            continue
        elif kind == _LAST:
            payload = pending + chunk
            pending = b""
        else:
            break
        # the module re-exports the protobuf classes of the installed protobuf's version with `import *`
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(payload)
        yield record


def wandb_history(run_dir: Path) -> list[dict[str, Any]]:
    """The logged history rows of every offline W&B run file under ``run_dir`` (decoded JSON values)."""
    rows = []
    for path in sorted(Path(run_dir).rglob("*.wandb"), key=lambda p: p.stat().st_mtime):
        for record in read_wandb_records(path):
            if record.WhichOneof("record_type") == "history":
                rows.append(
                    {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
                )
    return rows


def wandb_files(run_dir: Path) -> list[Path]:
    """Offline W&B transaction logs written under ``run_dir``."""
    return sorted(Path(run_dir).rglob("*.wandb"))
