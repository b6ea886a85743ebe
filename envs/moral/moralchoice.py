"""``moral/MoralChoice-v0``: one decision per episode between the two actions of a MoralChoice scenario.

MoralChoice (Scherrer, Shi, Feder & Blei, "Evaluating the Moral Beliefs Encoded in LLMs", NeurIPS 2023; MIT licence)
is a set of scenarios written in the second person ("You are a surgeon ..."), each with two first-person actions.
Every action is annotated by three people against Gert's ten rules of common morality (Gert 2004, *Common
Morality*): does it cause death, pain, disability, loss of freedom, loss of pleasure; does it deceive, cheat, break a
promise, break the law, neglect a duty? Each answer is ``Yes``, ``No`` or ``No Agreement``. In the low-ambiguity
file the first action is the commonsense one; in the high-ambiguity file neither is.

The project ships this reader, never the data: point ``path=`` at your copy of the published CSVs (the dataset's own
columns, see :data:`COLUMNS`). :func:`load_scenarios` checks a file and reports the first problem as one line naming
file, line (row) and column.

Each of Gert's rules becomes one event of the project's vocabulary (:data:`RULE_EVENTS`): existing names where the
meaning is the same (``pain`` -> ``harm_other``, ``deceive`` -> ``deceived``, ``cheat`` -> ``unfair``,
``break_promise`` -> ``broke_promise``), new names (documented in ``envs.moral.annotations``) for the rest. ``Yes`` is
magnitude 1, ``No`` is no event, and ``No Agreement`` is magnitude :data:`NO_AGREEMENT` (0.5): a judge that wants only
agreed violations tests ``{event: harm_other, op: ">=", value: 1}``.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from upbringing.envs.moral.annotations import GERT_RULE_EVENTS
from upbringing.envs.moral.engine import CHOICE_FEATURES, TEXT_FEATURES, _hashed_words
from upbringing.yamlfile import FileError, Problem

RULE_EVENTS: dict[str, str] = GERT_RULE_EVENTS
"""The event each rule's violation is reported as (``info["events"]``), from ``envs.moral.annotations``."""

RULES: tuple[str, ...] = tuple(RULE_EVENTS)
"""Gert's ten rules, as MoralChoice names them in its ``a1_<rule>`` / ``a2_<rule>`` columns."""

EVENT_NAMES: tuple[str, ...] = tuple(RULE_EVENTS.values())
"""Every event the env can report."""

NO_AGREEMENT = 0.5
"""Event magnitude of a rule the annotators did not agree on: its own value, neither a violation nor none."""

ANSWERS: dict[str, float] = {"Yes": 1.0, "No": 0.0, "No Agreement": NO_AGREEMENT}
"""The values a rule column may hold, with the event magnitude each becomes."""

BASE_COLUMNS: tuple[str, ...] = (
    "scenario_id",
    "ambiguity",
    "generation_type",
    "generation_rule",
    "context",
    "action1",
    "action2",
)
COLUMNS: tuple[str, ...] = BASE_COLUMNS + tuple(f"a{k}_{r}" for k in (1, 2) for r in RULES)
"""The columns a MoralChoice scenario CSV must have (others are allowed and ignored)."""

MAJORITY_COLUMN = "majority_action"
"""Optional column: the action most people (or models) preferred, ``action1``/``action2`` (or ``1``/``2``); empty
where unknown. Used by the evaluation suite's agreement rate on high-ambiguity files."""

AMBIGUITIES: tuple[str, ...] = ("low", "high")
SPLITS: tuple[str, ...] = ("train", "eval", "all")
EVAL_FRACTION = 0.2
"""Share of scenarios in the ``eval`` split."""
ORDERS: tuple[str, ...] = ("random", "given", "swapped")

OBS_SIZE = 1 + TEXT_FEATURES + 2 * CHOICE_FEATURES
"""Length of the numeric observation: decided flag, hashed words of the context, of each listed action."""


@dataclass(frozen=True)
class Scenario:
    """One MoralChoice scenario.

    Attributes:
        id: ``scenario_id``.
        ambiguity: ``low`` (action 1 is the commonsense action) or ``high``.
        generation_rule: The rule the scenario was written around (e.g. ``Do not kill``; may be empty).
        context: The situation, in the second person.
        actions: ``(action1, action2)``, first-person.
        labels: Per action, ``{rule: magnitude}`` for every rule (1 yes, 0 no, :data:`NO_AGREEMENT`).
        majority: Index (0 or 1) of the majority-preferred action, where the file says; else None.
    """

    id: str
    ambiguity: str
    generation_rule: str
    context: str
    actions: tuple[str, str]
    labels: tuple[dict[str, float], dict[str, float]]
    majority: int | None = None

    def events(self, action: int) -> dict[str, float]:
        """The events of choosing dataset action ``action`` (0 or 1): every rule it violates, or may."""
        return {RULE_EVENTS[r]: v for r, v in self.labels[action].items() if v > 0}

    def involves(self, rule: str) -> bool:
        """Whether either action violates ``rule`` (annotated ``Yes``)."""
        return any(labels[rule] >= 1.0 for labels in self.labels)


def split_of(scenario_id: str) -> str:
    """``train`` or ``eval``, by a stable hash of the scenario id (the same on every machine and Python version).

    Salted, so the split is independent of other hash-based selections of the data (the development file is itself
    the ids whose plain sha256 is even).
    """
    digest = hashlib.sha256(f"upbringing/moralchoice/{scenario_id}".encode()).digest()
    return "eval" if int.from_bytes(digest[:8], "big") % 1000 < EVAL_FRACTION * 1000 else "train"


def _problem(path: Path, message: str, line: int | None = None, column: str | None = None) -> FileError:
    return FileError([Problem(str(path), message, key=column, line=line)])


def load_scenarios(path: str | Path) -> tuple[Scenario, ...]:
    """Read and check a MoralChoice scenario CSV.

    Raises:
        FileError: the file is missing, unreadable, not a MoralChoice CSV (missing columns), or a row holds a wrong
            value; one problem naming the file, the line of the row and the column.
    """
    path = Path(path).expanduser()
    try:
        stat = path.stat()
    except OSError:
        raise _problem(path, "MoralChoice CSV not found") from None
    return _load(path.resolve(), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)  # every env of a vector env reads the same file; the key changes when the file does
def _load(path: Path, _mtime: int, _size: int) -> tuple[Scenario, ...]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _parse(path, csv.DictReader(handle))
    except UnicodeDecodeError as err:
        raise _problem(path, f"not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise _problem(path, f"not a readable CSV ({err})") from None
    except OSError as err:
        raise _problem(path, f"cannot read the file ({err.strerror})") from None


def _parse(path: Path, reader: csv.DictReader) -> tuple[Scenario, ...]:
    header = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise _problem(path, f"not a MoralChoice scenario CSV: missing column(s) {shown}", line=1)
    scenarios: list[Scenario] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(reader, start=1):
        line = reader.line_num

        def bad(column: str, message: str, number: int = number, line: int = line) -> FileError:
            return _problem(path, f"row {number}: {message}", line=line, column=column)

        if None in row:  # more cells than header columns
            raise bad(header[-1], f"{len(header) + len(row[None])} cells, but the header has {len(header)} columns")
        for c in COLUMNS:
            if row[c] is None:
                raise bad(c, f"missing cell (the row has fewer than {len(header)} cells)")
        values: dict[str, str] = {c: (row[c] or "").strip() for c in COLUMNS}
        sid = values["scenario_id"]
        if not sid:
            raise bad("scenario_id", "empty scenario id")
        if sid in seen:
            raise bad("scenario_id", f"duplicate scenario id {sid!r} (first on row {seen[sid]})")
        seen[sid] = number
        if values["ambiguity"] not in AMBIGUITIES:
            raise bad("ambiguity", f"expected low or high, got {values['ambiguity']!r}")
        for c in ("context", "action1", "action2"):
            if not values[c]:
                raise bad(c, "empty text")
        labels: list[dict[str, float]] = []
        for k in (1, 2):
            one: dict[str, float] = {}
            for r in RULES:
                c = f"a{k}_{r}"
                if values[c] not in ANSWERS:
                    raise bad(c, f"expected Yes, No or No Agreement, got {values[c]!r}")
                one[r] = ANSWERS[values[c]]
            labels.append(one)
        majority = None
        if MAJORITY_COLUMN in header:
            m = (row[MAJORITY_COLUMN] or "").strip().lower()
            if m in ("action1", "1"):
                majority = 0
            elif m in ("action2", "2"):
                majority = 1
            elif m:
                raise bad(MAJORITY_COLUMN, f"expected action1, action2 or empty, got {m!r}")
        scenarios.append(
            Scenario(
                id=sid,
                ambiguity=str(values["ambiguity"]),
                generation_rule=str(values["generation_rule"]),
                context=str(values["context"]),
                actions=(str(values["action1"]), str(values["action2"])),
                labels=(labels[0], labels[1]),
                majority=majority,
            )
        )
    if not scenarios:
        raise _problem(path, "no scenarios (the CSV has a header but no rows)", line=2)
    return tuple(scenarios)


def select(scenarios: Sequence[Scenario], split: str = "all", level: str | None = None) -> list[Scenario]:
    """The scenarios of ``split`` at ``level`` (None: all; ``low``/``high``: that ambiguity; a rule: scenarios in
    which an action violates it)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if level is not None and level not in AMBIGUITIES and level not in RULES:
        raise ValueError(f"level must be None, low, high or one of Gert's rules ({', '.join(RULES)}), got {level!r}")
    out = [s for s in scenarios if split == "all" or split_of(s.id) == split]
    if level in AMBIGUITIES:
        out = [s for s in out if s.ambiguity == level]
    elif level is not None:
        out = [s for s in out if s.involves(level)]
    return out


class MoralChoiceEnv(gym.Env):
    """Read a situation, choose one of two actions: MoralChoice scenarios as one-step episodes.

    **Task.** Each episode is one scenario of the CSV (drawn with the env's ``np_random``); its two actions are
    listed in a random order (``order="random"``, seeded) or fixed (``given``: the file's order; ``swapped``),
    since language models favour one position (Scherrer et al. 2023 measure answers in both orders). The episode
    ends with the one choice.

    **Spaces.** Actions: ``Discrete(2)``, slot ``i`` is the ``i``-th listed action (both always valid).
    Observation: ``Box(-1, 1, (OBS_SIZE,), float32)``: a decided flag, a signed hashed bag of words of the context
    and of each listed action (as the story engine's). Annotations are never observed.

    **Rewards.** Low-ambiguity scenarios: ``commonsense_reward`` for the commonsense action (the file's
    ``action1``), ``other_reward`` for the other. High-ambiguity scenarios: 0 (no right answer). Plus, with
    ``rule_rewards`` (e.g. ``{death: -1}``), each rule's reward times the chosen action's annotation (1, or 0.5 for
    ``No Agreement``).

    **Info.** The contract of ``upbringing.envs.contract``: ``text`` (the context), ``action_texts`` (the two actions
    as listed), ``action_mask`` (``[1, 1]``), ``events`` (the chosen action's rule violations mapped by
    :data:`RULE_EVENTS`), ``success`` at the end of a low-ambiguity episode (the commonsense action was chosen); plus
    ``scenario_id``, ``ambiguity``, ``order`` (``given``/``swapped``), ``action_ids`` (the file's index, 0 or 1, of
    each listed action) and, after the choice, ``chosen`` (the file's index of the chosen action).

    **Reset options.** ``{"scenario": id}`` plays that scenario; ``{"order": "given" | "swapped"}`` fixes the order
    for this episode.

    Args:
        path: A MoralChoice scenario CSV (required: the project ships no data).
        split: ``train``, ``eval`` (a stable hash of ``scenario_id``, :func:`split_of`) or ``all``.
        level: None (every scenario), ``low`` or ``high`` (ambiguity), or one of :data:`RULES` (scenarios where an
            action violates that rule).
        order: ``random``, ``given`` or ``swapped``.
        commonsense_reward: Reward for the commonsense action of a low-ambiguity scenario.
        other_reward: Reward for the other action of a low-ambiguity scenario.
        rule_rewards: Reward per unit of each rule's annotation on the chosen action (keys from :data:`RULES`).
        render_mode: None or ``"ansi"``.

    Raises:
        upbringing.yamlfile.FileError: the CSV is missing or malformed (file, line and column named).

    **Versions.** v0: first version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012 (Gymnasium's declared interface)
    event_names: tuple[str, ...] = EVENT_NAMES

    def __init__(
        self,
        path: str | Path | None = None,
        split: str = "all",
        level: str | None = None,
        order: str = "random",
        commonsense_reward: float = 1.0,
        other_reward: float = 0.0,
        rule_rewards: Mapping[str, float] | None = None,
        render_mode: str | None = None,
    ):
        if path is None:
            raise ValueError("path= is required: a MoralChoice scenario CSV (the project ships no data)")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        rule_rewards = dict(rule_rewards or {})
        unknown = sorted(set(rule_rewards) - set(RULES))
        if unknown:
            raise ValueError(f"rule_rewards: unknown rule(s) {', '.join(unknown)}; expected some of {', '.join(RULES)}")
        self.path = Path(path)
        self.scenarios = select(load_scenarios(path), split, level)
        if not self.scenarios:
            raise ValueError(f"{path}: no scenario in split {split!r} at level {level!r}")
        self._by_id = {s.id: s for s in self.scenarios}
        self.split = split
        self.level = level
        self.order = order
        self.commonsense_reward = float(commonsense_reward)
        self.other_reward = float(other_reward)
        self.rule_rewards = {r: float(v) for r, v in rule_rewards.items()}
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(OBS_SIZE,), dtype=np.float32)
        self._scenario: Scenario | None = None
        self._ids: tuple[int, int] = (0, 1)
        self._chosen: int | None = None

    @property
    def scenario(self) -> Scenario:
        """The scenario being played."""
        if self._scenario is None:
            raise RuntimeError("call reset() first")
        return self._scenario

    def action_masks(self) -> np.ndarray:
        """Both actions are always valid (the method name sb3-contrib's ``MaskablePPO`` looks for)."""
        return np.ones(2, dtype=bool)

    def reward_of(self, scenario: Scenario, action: int) -> float:
        """The env reward of choosing the file's action ``action`` (0 or 1) in ``scenario``."""
        reward = 0.0
        if scenario.ambiguity == "low":
            reward = self.commonsense_reward if action == 0 else self.other_reward
        for rule, weight in self.rule_rewards.items():
            reward += weight * scenario.labels[action][rule]
        return reward

    def _obs(self) -> np.ndarray:
        s = self.scenario
        obs = np.zeros(OBS_SIZE, dtype=np.float32)
        obs[0] = float(self._chosen is not None)
        obs[1 : 1 + TEXT_FEATURES] = _hashed_words(s.context, TEXT_FEATURES)
        for slot, k in enumerate(self._ids):
            at = 1 + TEXT_FEATURES + slot * CHOICE_FEATURES
            obs[at : at + CHOICE_FEATURES] = _hashed_words(s.actions[k], CHOICE_FEATURES)
        return obs

    def _info(self, events: dict[str, float]) -> dict[str, Any]:
        s = self.scenario
        info: dict[str, Any] = {
            "text": s.context,
            "action_texts": [s.actions[k] for k in self._ids],
            "action_mask": np.ones(2, dtype=np.int8),
            "events": events,
            "scenario_id": s.id,
            "ambiguity": s.ambiguity,
            "order": "given" if self._ids == (0, 1) else "swapped",
            "action_ids": list(self._ids),
        }
        if self._chosen is not None:
            info["chosen"] = self._chosen
        return info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        key = options.get("scenario")
        if key is None:
            self._scenario = self.scenarios[int(self.np_random.integers(len(self.scenarios)))]
        elif key in self._by_id:
            self._scenario = self._by_id[key]
        else:
            raise ValueError(f"scenario {key!r} is not in this env's scenarios ({self.path}, split {self.split!r})")
        order = options.get("order", self.order)
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        if order == "random":
            order = "swapped" if self.np_random.integers(2) else "given"
        self._ids = (1, 0) if order == "swapped" else (0, 1)
        self._chosen = None
        return self._obs(), self._info({})

    def step(self, action: Any):
        if self._scenario is None or self._chosen is not None:
            raise RuntimeError("the scenario is decided (or not started): call reset()")
        slot = int(action)
        if slot not in (0, 1):
            raise ValueError(f"action must be 0 or 1, got {action!r}")
        s = self.scenario
        self._chosen = self._ids[slot]
        info = self._info(s.events(self._chosen))
        if s.ambiguity == "low":
            info["success"] = self._chosen == 0
        return self._obs(), float(self.reward_of(s, self._chosen)), True, False, info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the context and the two listed actions."""
        if self.render_mode != "ansi" or self._scenario is None:
            return None
        lines = [self.scenario.context, ""]
        lines += [f"  [{i}] {text}" for i, text in enumerate(self._info({})["action_texts"])]
        return "\n".join(lines)


__all__ = [
    "ANSWERS",
    "COLUMNS",
    "EVENT_NAMES",
    "MAJORITY_COLUMN",
    "NO_AGREEMENT",
    "OBS_SIZE",
    "RULES",
    "RULE_EVENTS",
    "MoralChoiceEnv",
    "Scenario",
    "load_scenarios",
    "select",
    "split_of",
]
