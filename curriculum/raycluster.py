"""Joining a Ray cluster: the one place the engine imports Ray from.

Ray (https://docs.ray.io) is an optional extra (``pip install 'upbringing[ray]'``); nothing imports this module
unless a sweep or ``curriculum.vec_env: ray`` asks for it, so the single-machine path needs no Ray.
"""

from __future__ import annotations

import importlib.util
import logging
from types import ModuleType

from upbringing.yamlfile import FileError, Problem

INSTALL = "pip install 'upbringing[ray]'"


def ray_installed() -> bool:
    """Whether Ray can be imported (looked up, not imported: importing it takes a second)."""
    return importlib.util.find_spec("ray") is not None


def import_ray(what: str) -> ModuleType:
    """The ``ray`` module; ``what`` (the command or key that asked for it) names a one-line error when it is missing."""
    try:
        import ray
    except ImportError:
        raise FileError([Problem(what, f"needs Ray, an optional extra: {INSTALL}")]) from None
    return ray


def connect(address: str | None, what: str, num_cpus: int | None = None) -> ModuleType:
    """Join Ray once per process and return the module.

    A process that already joined (a test's ``ray.init``, a sweep's worker) stays where it is; otherwise ``address``
    names a running cluster (``host:port`` or ``auto``), and without one Ray reads ``RAY_ADDRESS`` or starts a local
    instance sized to the machine (``num_cpus`` to size it yourself).
    """
    ray = import_ray(what)
    if not ray.is_initialized():
        try:
            ray.init(
                address=address,
                num_cpus=num_cpus if address is None else None,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        except ConnectionError as err:  # no cluster at that address
            raise FileError([Problem(what, f"cannot join the Ray cluster at {address}: {err}")]) from None
    return ray
