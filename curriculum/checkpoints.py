"""Checkpoint folders of a run: written atomically with a manifest, verified before they are trusted.

A checkpoint is a folder ``checkpoints/chunk-<n>`` holding what the runner saves at a chunk boundary (agent, engine
state, feedback, retention) and ``manifest.json``, the size and SHA-256 of every file in it. It is written into a
temporary folder and renamed into place, so an interrupted write never leaves a half checkpoint under its real name
(DESIGN.md, "Exact resume").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from upbringing.agents.checkpoint import write_json_atomic
from upbringing.curriculum.tracking import VERSIONS_FILE

CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"  # in a checkpoint: size and SHA-256 of every file it wrote
LEARNERS = "learners"  # in a checkpoint: the independent learners other than the run's agent, <stage>/<seat>


def write_checkpoint(run_dir: Path, chunk: int, write: Callable[[Path], None], keep: int) -> Path:
    """Write checkpoint ``chunk-<chunk>`` of a run folder atomically and keep only the newest ``keep``.

    Args:
        run_dir: The run folder.
        chunk: The chunk index the checkpoint follows (its name).
        write: Writes the checkpoint's files into the folder it is given (a temporary one, renamed into place once
            every file is on disk and listed in the manifest).
        keep: How many checkpoints to keep (older ones are deleted).

    Returns:
        The checkpoint folder.
    """
    root = run_dir / CHECKPOINTS
    root.mkdir(exist_ok=True)
    name = f"chunk-{chunk:06d}"
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write(tmp)
    files = {}
    for f in sorted(tmp.rglob("*")):
        if f.is_file():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
            files[f.relative_to(tmp).as_posix()] = file_record(f)
    write_json_atomic(tmp / MANIFEST, {"format": 1, "files": files})
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    write_json_atomic(root / "latest.json", {"checkpoint": name})
    kept = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("chunk-"))
    for old in kept[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_partial_checkpoints(run_dir: Path) -> None:
    """Delete the half-written checkpoints an interrupted process left (its temporary folders)."""
    root = run_dir / CHECKPOINTS
    for stale in root.glob(".tmp-*") if root.exists() else []:
        shutil.rmtree(stale, ignore_errors=True)


def file_record(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file, as a checkpoint's manifest records them."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def checkpoint_damage(path: Path) -> str | None:
    """Why the checkpoint folder ``path`` cannot be trusted, or None when every file its manifest lists is there with
    the size and SHA-256 it was written with."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or "engine.json" not in files:
            raise ValueError("no files listed")
    except FileNotFoundError:
        return f"{MANIFEST} is missing"
    except (OSError, ValueError, TypeError, KeyError) as err:
        return f"{MANIFEST} cannot be read ({type(err).__name__})"
    for name, want in files.items():
        file = path / name
        if (
            not isinstance(want, dict)
            or not isinstance(want.get("size"), int)
            or Path(name).is_absolute()
            or ".." in Path(name).parts
        ):
            return f"{MANIFEST} cannot be read (bad entry for {name!r})"
        try:
            if file.exists() and not file.is_file():
                return f"{name} is not a file"
            size = file.stat().st_size
            if size != want["size"]:
                return f"{name} is {size:,} bytes, {want['size']:,} were written"
            if file_record(file)["sha256"] != want.get("sha256"):
                return f"{name} has changed since it was written (SHA-256 differs)"
        except FileNotFoundError:
            return f"{name} is missing"
        except OSError as err:
            return f"{name} cannot be read ({err.strerror or err})"
    return None


def checkpoints(run_dir: Path) -> list[Path]:
    """A run folder's checkpoint folders, newest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("chunk-")), reverse=True)


def intact_checkpoints(run_dir: Path) -> Iterator[tuple[Path, str | None]]:
    """Each checkpoint, newest first, with why it is damaged (None: intact). A run written before checkpoints had
    manifests (no ``versions.json``, no checkpoint with a manifest) is taken as it is: each checkpoint with an
    ``engine.json`` counts as intact."""
    found = checkpoints(run_dir)
    legacy = not (Path(run_dir) / VERSIONS_FILE).exists() and not any((p / MANIFEST).exists() for p in found)
    for path in found:
        if legacy:
            yield path, None if (path / "engine.json").exists() else "engine.json is missing"
        else:
            yield path, checkpoint_damage(path)


def latest_checkpoint(run_dir: Path, say: Callable[[str], None] | None = None) -> Path | None:
    """The newest intact checkpoint of a run folder, or None when there is none. Each newer damaged one is passed
    to ``say`` as one line saying which and why."""
    for path, damage in intact_checkpoints(run_dir):
        if damage is None:
            return path
        if say is not None:
            say(f"warning: skipping damaged checkpoint {path.name}: {damage}")
    return None
