"""Every registered thing is checked: every file in configs/ and every shipped constitution validates."""

from __future__ import annotations

from pathlib import Path

import pytest
from upbringing.curriculum.commands import check_file

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "configs").rglob("*.yaml")) + sorted((ROOT / "constitutions").glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_file_validates(path):
    assert check_file(path) == []
