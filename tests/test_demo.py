"""The README's demo, end to end (slow: a 24 h run at 1 s with every subsystem on)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_demo_reports_every_subsystem(tmp_path):
    r = subprocess.run([sys.executable, "-m", "twin", "run", "scenarios/quickstart.toml", "--out", str(tmp_path),
                        "--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "quickstart"
    assert sorted(p.name for p in folder.iterdir()) == ["ffr_windows.parquet", "overview.png", "summary.json",
                                                        "timeseries.parquet"]
    s = json.loads((folder / "summary.json").read_text())
    assert s["ticks"] == 86_400
    assert s["energy_balance_rel_error"] <= 1e-3
    h = s["heat"]
    assert h["heat_delivered_kwh"] > 0 and h["recovery_efficiency"] >= 0.60 and h["supply_within_2k"]
    assert h["heat_meter_mpe_pct"] > 2.0  # EN 1434 class 2 at the operating point
    assert s["battery"]["throughput_kwh"] > 0
    assert s["ffr"]["activations"] == 6 and s["ffr"]["all_met_deadline"] is True
    assert 0.0 < s["cfe"] < 1.0
