"""Shared fixtures: paths to the repo, the scenarios and (optionally) ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$GRIDTWIN_SHARED_DATA`` or ``<repo>/../shared/data`` (may not exist)."""
    return Path(os.environ.get("GRIDTWIN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def scenarios_dir() -> Path:
    return REPO / "scenarios"
