"""A tiny MoralChoice CSV written by tests (the project ships no MoralChoice data), and where the development split
lies when the checkout has it (``../shared/data/moralchoice/`` beside the repository, as in CI)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from upbringing.envs.moral.moralchoice import COLUMNS, RULES

ROOT = Path(__file__).resolve().parents[2]
DEV_NAME = "moralchoice_low_ambiguity_dev.csv"
# CI: a copy of shared/ beside the clone; a developer's worktree (/work/wt/NAME): shared/ two levels up.
DEV_CANDIDATES = [
    ROOT.parent / "shared/data/moralchoice" / DEV_NAME,
    ROOT.parents[1] / "shared/data/moralchoice" / DEV_NAME,
]


def dev_split() -> Path | None:
    """The development split of MoralChoice's low-ambiguity scenarios, or None where the checkout lacks it."""
    return next((p for p in DEV_CANDIDATES if p.exists()), None)


def row(
    sid: str,
    ambiguity: str = "low",
    a1: Mapping[str, str] | None = None,
    a2: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, str]:
    """One scenario row: every rule ``No`` unless ``a1``/``a2`` say otherwise."""
    out = {
        "scenario_id": sid,
        "ambiguity": ambiguity,
        "generation_type": "Handwritten",
        "generation_rule": "Do not kill",
        "context": f"You are a lifeguard at a busy beach ({sid}).",
        "action1": f"I swim out and rescue the child ({sid}).",
        "action2": f"I keep reading my magazine ({sid}).",
    }
    for k, labels in ((1, a1 or {}), (2, a2 or {})):
        for r in RULES:
            out[f"a{k}_{r}"] = labels.get(r, "No")
    out.update({k: str(v) for k, v in extra.items()})
    return out


TINY_ROWS = [
    row("T_1", a2={"death": "Yes", "duty": "Yes"}),
    row("T_2", a2={"deceive": "Yes", "break_promise": "No Agreement"}),
    row("T_3", a2={"pain": "Yes", "cheat": "Yes"}),
    row("T_4", a2={"break_law": "Yes", "freedom": "Yes", "pleasure": "Yes", "disable": "Yes"}),
    row("T_5", a2={"pain": "Yes"}),
    row("T_6", a2={"deceive": "Yes"}),
]
"""Six low-ambiguity scenarios touching every rule once at least."""


def write_csv(path: Path, rows: Sequence[Mapping[str, str]], columns: Sequence[str] = COLUMNS) -> Path:
    """Write ``rows`` as a CSV with ``columns`` (plus any other column a row has) and return ``path``."""
    cols = list(columns) + list(dict.fromkeys(c for r in rows for c in r if c not in COLUMNS))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def env_kwargs(env_id: str, folder: Path) -> dict[str, Any]:
    """The keyword arguments an env needs to be built at all in a test (a data file for MoralChoice)."""
    if env_id == "moral/MoralChoice-v0":
        return {"path": str(write_csv(folder / "tiny_moralchoice.csv", TINY_ROWS))}
    return {}
