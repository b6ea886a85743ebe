"""The moral family of environments. ``SPECS`` lists them (see :class:`envs.registry.EnvSpec`)."""

from __future__ import annotations

from envs.registry import EnvSpec

SPECS: list[EnvSpec] = []
