"""Shared fixtures: paths to the repo and its scenarios (real data: traces.synthetic.shared_data_dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def scenarios_dir() -> Path:
    return REPO / "scenarios"
