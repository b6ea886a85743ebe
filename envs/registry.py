"""The one way to build any Upbringing environment: ``envs.make(env_id, **kwargs)``.

Each env family (``envs/physics``, ``envs/social``, ``envs/moral``) lists its environments as :class:`EnvSpec`
rows in its package ``__init__``; ``envs/__init__.py`` registers them all here. Entry points are import strings,
so listing environments imports no simulation code, and Gymnasium ids are also registered with
``gymnasium.register`` so ``gymnasium.make(id)`` works too.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium
from upbringing.envs.arguments import keyword_params

Family = Literal["physics", "social", "moral"]
Api = Literal["gymnasium", "pettingzoo"]

_REGISTRY: dict[str, EnvSpec] = {}


class EnvArgumentError(ValueError):
    """An env id or an env keyword argument is wrong; the message says which and what was expected."""


@dataclass(frozen=True)
class EnvSpec:
    """One registered environment.

    Attributes:
        id: Versioned id, ``<family>/<Name>-v<N>``.
        entry_point: ``"module.path:ClassName"``; the class takes the env's keyword arguments.
        family: ``physics``, ``social`` or ``moral``.
        api: ``gymnasium`` (single agent) or ``pettingzoo`` (``ParallelEnv``).
        description: One line on what the task is.
        event_names: Every name the env can report in ``info["events"]``.
        levels: Difficulty levels, easiest first, each a dict of keyword-argument overrides.
        extra: Anything else worth listing in ``upbringing envs --json`` (age band, source, ...).
    """

    id: str
    entry_point: str
    family: Family
    api: Api
    description: str
    event_names: tuple[str, ...] = ()
    levels: tuple[dict[str, Any], ...] = ({},)
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self) -> type[Any]:
        """Import and return the env class."""
        return _load(self.entry_point)

    def params(self) -> tuple[str, ...]:
        """The keyword arguments the env's class names (``split``, ``gravity``, ...; not a catch-all ``**kwargs``)."""
        return _keyword_params(self.entry_point)[0]

    def row(self) -> dict[str, Any]:
        """The JSON row listed by ``upbringing envs --json``."""
        return {
            "id": self.id,
            "family": self.family,
            "api": self.api,
            "description": self.description,
            "levels": len(self.levels),
            "level_kwargs": [dict(level) for level in self.levels],
            "events": list(self.event_names),
            **self.extra,
        }


def register(spec: EnvSpec) -> None:
    """Add ``spec`` to the registry (and to Gymnasium's, for single-agent envs)."""
    if spec.id in _REGISTRY:
        raise ValueError(f"env id {spec.id!r} is registered twice")
    _REGISTRY[spec.id] = spec
    if spec.api == "gymnasium" and spec.id not in gymnasium.registry:
        gymnasium.register(id=spec.id, entry_point=spec.entry_point)


@contextmanager
def registered(env_spec: EnvSpec) -> Iterator[EnvSpec]:
    """Register ``env_spec`` for the duration of a ``with`` block (envs of a test or a notebook experiment)."""
    register(env_spec)
    try:
        yield env_spec
    finally:
        del _REGISTRY[env_spec.id]
        gymnasium.registry.pop(env_spec.id, None)


def spec(env_id: str) -> EnvSpec:
    """Return the spec of ``env_id`` or raise :class:`EnvArgumentError` listing the known ids."""
    try:
        return _REGISTRY[env_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise EnvArgumentError(f"unknown env id {env_id!r}; registered ids: {known}") from None


@functools.cache  # asked for every env a chunk or an evaluation builds; a class's signature never changes
def _keyword_params(entry_point: str) -> tuple[tuple[str, ...], bool]:
    return keyword_params(_load(entry_point))


def _load(entry_point: str) -> type[Any]:
    module, _, name = entry_point.partition(":")
    return getattr(importlib.import_module(module), name)


def list_specs() -> list[EnvSpec]:
    """Every registered spec, in registration order (the curriculum's developmental order)."""
    return list(_REGISTRY.values())


def make(env_id: str, **kwargs: Any) -> Any:
    """Build a registered env: a ``gymnasium.Env`` or a ``pettingzoo.ParallelEnv``.

    Raises:
        EnvArgumentError: the id is unknown, a keyword is not one the env accepts, or the env rejected a value.
    """
    env_spec = spec(env_id)
    cls = env_spec.load()
    accepted, takes_any = _keyword_params(env_spec.entry_point)
    if not takes_any:
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise EnvArgumentError(
                f"{env_id}: unknown argument(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(accepted)}"
            )
    try:
        return cls(**kwargs)
    except EnvArgumentError:
        raise
    except (ValueError, TypeError, ArithmeticError) as err:  # ArithmeticError: int(inf), a float too large
        raise EnvArgumentError(f"{env_id}: {err}") from err
