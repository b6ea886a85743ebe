"""Upbringing's simulated worlds, in developmental order: physics, then social dilemmas, then moral stories.

``envs.make(env_id, **kwargs)`` builds any of them; ``envs.list_specs()`` lists them. Importing this package imports
no simulation code: each family lists its specs with import-string entry points.
"""

from __future__ import annotations

from upbringing.envs.moral import SPECS as _MORAL
from upbringing.envs.physics import SPECS as _PHYSICS
from upbringing.envs.registry import EnvArgumentError, EnvSpec, list_specs, make, register, spec
from upbringing.envs.social import SPECS as _SOCIAL

for _spec in (*_PHYSICS, *_SOCIAL, *_MORAL):
    register(_spec)

__all__ = ["EnvArgumentError", "EnvSpec", "list_specs", "make", "register", "spec"]
