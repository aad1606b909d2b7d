"""Shared fixtures: paths to the repo and its scenarios (real data: traces.synthetic.shared_data_dir)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def scenarios_dir() -> Path:
    return REPO / "scenarios"


def aot_or_skip():
    """The AOT-built kernels (twin.aot), or skip; with GRIDTWIN_REQUIRE_AOT=1 (``make test``)
    a missing or stale build fails instead, so that CI runs the kernels the benchmarks use."""
    from twin import aot

    mod = aot.kernels()
    if mod is None:
        if os.environ.get("GRIDTWIN_REQUIRE_AOT") == "1":
            pytest.fail(f"GRIDTWIN_REQUIRE_AOT=1 but {aot.status()}")
        pytest.skip(aot.status())
    return mod


def backend_via(name: str, monkeypatch) -> str:
    """RlsAr's backend for a test parameter ``"numpy"``, ``"numba-aot"`` (the AOT build's
    kernels; skipped without one) or ``"numba-jit"`` (numba's JIT, the AOT build hidden)."""
    if name == "numba-aot":
        pytest.importorskip("numba")
        aot_or_skip()
    elif name == "numba-jit":
        pytest.importorskip("numba")
        from twin import aot

        monkeypatch.setattr(aot, "kernels", lambda: None)
    return name.split("-")[0]


@pytest.fixture(params=["aot", "jit"])
def compiled_via(request, monkeypatch) -> str:
    """Run a compiled-backend test on both ways to the same compiled code: the AOT build
    (twin.aot; skipped without one) and numba's JIT (the AOT build hidden)."""
    if request.param == "aot":
        aot_or_skip()
    else:
        pytest.importorskip("numba")
        from twin import aot

        monkeypatch.setattr(aot, "kernels", lambda: None)
    return request.param
