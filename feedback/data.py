"""Preference data: trajectory segments and labelled comparisons, saved as JSONL.

Simulated raters, constitution (AI) labellers and people answering in the terminal all produce
:class:`Preference` rows in this one format, and the reward model trains on any mix of them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from upbringing.yamlfile import FileError, Problem


@dataclass
class Segment:
    """A piece of one trajectory, as the learner experienced it.

    Attributes:
        obs: Numeric observations, one list per step.
        actions: Actions taken.
        rewards: The env's task reward per step.
        events: ``info["events"]`` per step (ground truth; raters may read it, policies never do).
        texts: ``info["text"]`` per step, plus the chosen action's text, for text features and people.
        stage: Name of the curriculum stage the segment comes from.
        env: Id of the env it was played in (``physics/Support-v0``; its family is the part before the slash).
        level: The stage's difficulty level it was played at (None: not recorded).
        scenes: Where the env draws its scene (physics: its bodies, see ``envs.physics.base.Sim.scene``), the scene
            each action was chosen in, then the scene the last action left (one more than the steps); else empty.
    """

    obs: list[list[float]]
    actions: list[int]
    rewards: list[float]
    events: list[dict[str, float]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    stage: str = ""
    env: str = ""
    level: int | None = None
    scenes: list[list[dict[str, Any]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.actions)


@dataclass
class Preference:
    """One answered comparison of two segments.

    Attributes:
        a: First segment.
        b: Second segment.
        label: Probability that ``a`` is preferred: 1.0 (a), 0.0 (b), 0.5 (equally good); None when skipped.
        rater: Who answered (``"sim:<name>"``, ``"constitution:<name>"``, ``"human:<name>"``).
        query_id: Stable id of the query.
        meta: Anything else worth keeping (selection method, step, disagreement, ...).
    """

    a: Segment
    b: Segment
    label: float | None
    rater: str
    query_id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Preference:
        row = json.loads(line)
        return cls(
            a=Segment(**row["a"]),
            b=Segment(**row["b"]),
            label=row["label"],
            rater=row["rater"],
            query_id=row.get("query_id", ""),
            meta=row.get("meta", {}),
        )


def write_jsonl(path: str | Path, prefs: Iterable[Preference]) -> None:
    """Write ``prefs`` to ``path`` atomically (a temp file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for p in prefs:
            f.write(p.to_json() + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_jsonl(path: str | Path) -> Iterator[Preference]:
    """Read the preferences saved in ``path``.

    Raises:
        FileError: a row that is not a preference (a damaged or hand-edited file), with its line.
    """
    try:
        with Path(path).open(encoding="utf-8") as f:
            for i, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    pref = Preference.from_json(line)
                except (ValueError, KeyError, TypeError, AttributeError) as err:
                    message = f"damaged feedback file: not a preference row ({type(err).__name__})"
                    raise FileError([Problem(str(path), message, line=i)]) from None
                yield pref
    except UnicodeDecodeError as err:
        raise FileError([Problem(str(path), f"cannot read file: {err}")]) from None
