"""Prompts for text policies: the env's situation text, a bounded window of earlier turns, and the options.

The prompt template belongs to the agent, not the env (see DESIGN.md). Two formats:

- ``plain``: the prompt ends with ``"You choose:"`` and each candidate is scored as the continuation
  ``" " + action_text``, so with byte-level or SentencePiece tokenizers the boundary between prompt and action falls
  between tokens.
- ``chat`` (instruct models): the situation and the options are the user turn of the tokenizer's own chat template,
  the assistant turn is opened (``add_generation_prompt``), and each candidate is scored as the start of the
  assistant's reply (the continuation is ``action_text`` itself). Instruct models are tuned on exactly this layout
  (Ouyang et al., 2022); without it they see text they were never tuned on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ANSWER_SLOT = "You choose:"
# The user turn's last line in the chat format: the reply is the chosen option's text.
CHAT_INSTRUCTION = "Reply with the option you choose."


@dataclass(frozen=True)
class Query:
    """One decision: the prompt, every action's text, and which actions are valid.

    Attributes:
        prompt: The text the actions are scored after.
        actions: One text per discrete action (the env's ``info["action_texts"]``).
        mask: One bool per action; only valid actions are scored.
        separator: Text between the prompt and an action (``" "`` after the plain answer slot, ``""`` at the start
            of a chat reply); a candidate is scored as ``separator + action``.
    """

    prompt: str
    actions: tuple[str, ...]
    mask: tuple[bool, ...]
    separator: str = " "

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
        chat: Renders a user message as the chat prompt up to the start of the assistant's reply (see
            :func:`chat_renderer`); None: the plain format.
    """

    history_window: int = 1
    list_options: bool = True
    chat: Callable[[str], str] | None = None

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
        if self.chat is not None:
            lines.append(CHAT_INSTRUCTION)
            return Query(self.chat("\n".join(lines)), actions, valid, separator="")
        lines.append(ANSWER_SLOT)
        return Query("\n".join(lines), actions, valid)


def has_chat_template(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` carries a chat template (instruct models do)."""
    return bool(getattr(tokenizer, "chat_template", None))


def chat_renderer(tokenizer: Any) -> Callable[[str], str]:
    """``user text -> prompt``: the tokenizer's chat template with one user turn and the assistant turn opened."""

    def render(user: str) -> str:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
        )

    return render


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
