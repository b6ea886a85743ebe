"""Checks of env keyword arguments shared by every family: each returns the value or raises ``ValueError`` with one
line saying what was expected (the registry turns it into :class:`~upbringing.envs.registry.EnvArgumentError`)."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


def keyword_params(cls: type[Any], skip: tuple[str, ...] = ()) -> tuple[tuple[str, ...], bool]:
    """The named parameters ``cls(...)`` takes (not ``self``, ``*args``, ``**kwargs`` or ``skip``), and whether it
    also takes any keyword (``**kwargs``): what every check of an env's or a game's keyword arguments reads."""
    params = inspect.signature(cls.__init__).parameters.values()
    named = tuple(
        p.name
        for p in params
        if p.name != "self" and p.name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` if it is an int in ``[minimum, maximum]``; raise ``ValueError`` saying what was expected
    otherwise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        expected = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum:,}]"
        raise ValueError(f"{name} must be an int {expected}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, low: float, high: float | None = None) -> float:
    """Return ``value`` as a float if it is a finite number in ``[low, high]``; raise ``ValueError`` otherwise."""
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.number) and np.isfinite(value)
    if not ok or value < low or (high is not None and value > high):
        where = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"{name} must be a number {where}, got {value!r}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool; otherwise raise a ValueError."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)
