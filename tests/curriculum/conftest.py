"""Fixtures shared by the curriculum tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for a test module (starting one takes seconds; sweeps join it), shut down after."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()
