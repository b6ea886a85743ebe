"""Language-model agent tests run torch on one thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tiny models' matrices gain nothing from threads, and on a shared 2-core machine OpenMP's spin-waiting
    makes two threads several times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
