"""Prompts for text policies: the env's situation text, a bounded window of earlier turns, and the options.

The prompt template belongs to the agent, not the env (see DESIGN.md). A prompt ends with ``"You choose:"`` and
each candidate is scored as the continuation ``" " + action_text``, so with byte-level or SentencePiece tokenizers
the boundary between prompt and action falls between tokens.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ANSWER_SLOT = "You choose:"


@dataclass(frozen=True)
class Query:
    """One decision: the prompt, every action's text, and which actions are valid.

    Attributes:
        prompt: The text the actions are scored after.
        actions: One text per discrete action (the env's ``info["action_texts"]``).
        mask: One bool per action; only valid actions are scored.
    """

    prompt: str
    actions: tuple[str, ...]
    mask: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.actions) != len(self.mask):
            raise ValueError(f"{len(self.actions)} actions but {len(self.mask)} mask entries")
        if not any(self.mask):
            raise ValueError("a query needs at least one valid action")

    @property
    def valid(self) -> list[int]:
        """Indices of the valid actions."""
        return [i for i, ok in enumerate(self.mask) if ok]


@dataclass(frozen=True)
class PromptFormat:
    """Renders an env's info dict (plus earlier turns) as a :class:`Query`.

    Attributes:
        history_window: How many earlier (situation, chosen action) turns to show.
        list_options: Whether the prompt lists the valid actions.
    """

    history_window: int = 1
    list_options: bool = True

    def query(self, info: Mapping[str, Any], history: Sequence[tuple[str, str]] = ()) -> Query:
        """Build the query for one env from its info dict and its earlier turns (oldest first)."""
        actions = tuple(str(a) for a in info["action_texts"])
        mask = info.get("action_mask")
        valid = tuple(bool(m) for m in (np.ones(len(actions)) if mask is None else mask))
        lines = []
        for text, action in history[-self.history_window :] if self.history_window else ():
            lines.append(f"Earlier: {text}")
            lines.append(f"You chose: {action}")
        lines.append(f"Now: {info['text']}")
        if self.list_options:
            lines.append("Options: " + "; ".join(a for a, ok in zip(actions, valid) if ok) + ".")
        lines.append(ANSWER_SLOT)
        return Query("\n".join(lines), actions, valid)


class EpisodeHistory:
    """The last few (situation, chosen action) turns of each env's current episode (a bounded window)."""

    def __init__(self, n_envs: int, window: int) -> None:
        self.window = window
        self._turns: list[deque[tuple[str, str]]] = [deque(maxlen=max(window, 1)) for _ in range(n_envs)]

    def __len__(self) -> int:
        return len(self._turns)

    def turns(self, env: int) -> tuple[tuple[str, str], ...]:
        """Earlier turns of env ``env``, oldest first."""
        return tuple(self._turns[env]) if self.window else ()

    def push(self, env: int, text: str, action: str) -> None:
        """Record that env ``env`` showed ``text`` and the agent chose ``action``."""
        if self.window:
            self._turns[env].append((text, action))

    def reset(self, env: int | None = None) -> None:
        """Forget env ``env``'s turns (a new episode began), or every env's if ``env`` is None."""
        for turns in self._turns if env is None else [self._turns[env]]:
            turns.clear()
