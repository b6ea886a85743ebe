"""The info contract every Upbringing env keeps, as a checker (tests/envs/test_contract.py runs it on every env).

Single-agent envs (Gymnasium) return, from ``reset`` and every ``step``, an info dict with:

- ``text``: the situation in plain language (what a language-model policy reads);
- ``action_texts``: a list with one text per ``Discrete`` action;
- ``action_mask``: an ``int8`` array, 1 where the action is valid (an invalid action never crashes the env; its
  docstring says what it does);
- ``events``: ``dict[str, float]`` of ground-truth event magnitudes from the simulation, names from the env's
  declared ``event_names`` (empty on ``reset``);
- ``success``: ``bool``, on the step that ends an episode (for tasks that have success);

Multi-agent envs (PettingZoo ``ParallelEnv``) return the same dict per agent. Reward terms (``reward_terms``) are
added by the engine's wrappers, never by envs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def check_info(info: dict[str, Any], n_actions: int, event_names: Iterable[str], *, at_reset: bool = False) -> None:
    """Assert that ``info`` keeps the contract above; raise ``AssertionError`` naming what is wrong."""
    assert isinstance(info.get("text"), str) and info["text"].strip(), "info['text'] must be a non-empty str"
    texts = info.get("action_texts")
    assert isinstance(texts, list | tuple) and len(texts) == n_actions, (
        f"info['action_texts'] must list {n_actions} texts, got {texts!r}"
    )
    assert all(isinstance(t, str) and t.strip() for t in texts), "every action text must be a non-empty str"
    mask = info.get("action_mask")
    assert isinstance(mask, np.ndarray) and mask.shape == (n_actions,) and mask.dtype == np.int8, (
        f"info['action_mask'] must be an int8 array of shape ({n_actions},), got {mask!r}"
    )
    assert mask.sum() >= 1, "at least one action must be valid"
    events = info.get("events")
    assert isinstance(events, dict), "info['events'] must be a dict"
    if at_reset:
        assert not events, "info['events'] must be empty on reset"
    unknown = set(events) - set(event_names)
    assert not unknown, f"undeclared event names {sorted(unknown)}"
    assert all(isinstance(v, float | int) and np.isfinite(v) for v in events.values()), "events must be numbers"
    if "success" in info:
        assert isinstance(info["success"], bool | np.bool_), "info['success'] must be a bool"
