"""DAY100 and E8 rows of `gridtwin reproduce`, on shortened set-ups (the full ones: make test-all)."""

from __future__ import annotations

import pytest

from traces.synthetic import shared_data_dir
from twin.reproduce.day100 import day100_rows
from twin.reproduce.e8 import e8_rows, savings

V100_DIR = shared_data_dir() / "v100_telemetry"
CI_DIR = shared_data_dir() / "entsoe_ci_2025"
needs_ci = pytest.mark.skipif(not (CI_DIR / "PL_hourly.parquet").is_file(),
                              reason=f"needs the ENTSO-E carbon intensity in {CI_DIR}")


def test_savings_follow_docs_metrics_on_a_hand_case():
    # baseline 100 kg IT / 120 kg facility for 10 node-h; run 90 / 110 kg for the same work:
    # s_IT = 10 %, s_fac = 1 - 110/120 = 8.333 %, drag = 1.667 pp, 11 000 g / 10 node-h
    base = {"co2_it_kg": 100.0, "co2_facility_kg": 120.0, "work_node_h": 10.0}
    run = {"co2_it_kg": 90.0, "co2_facility_kg": 110.0, "work_node_h": 10.0}
    s = savings(base, run)
    assert s["s_it_pct"] == pytest.approx(10.0, rel=1e-12)
    assert s["s_fac_pct"] == pytest.approx(100.0 / 12.0, rel=1e-12)
    assert s["drag_pp"] == pytest.approx(10.0 - 100.0 / 12.0, rel=1e-12)
    assert s["g_per_node_h"] == pytest.approx(11_000.0, rel=1e-12)
    # less work for the same carbon is no saving: per unit of work it is a loss
    assert savings(base, {**base, "work_node_h": 8.0})["s_fac_pct"] == pytest.approx(-25.0, rel=1e-12)


def test_day100_rows_on_four_hours():
    rows = {r["metric"]: r for r in day100_rows(seed=0, duration_h=4.0)}
    q = rows["FR-provision quality at the meter, 20 % band (mean over committed activations)"]
    assert q["tolerance"] != "report only"
    mae = rows["Tier-2 one-step MAE, host power / host dynamic range"]
    assert 0.0 <= mae["twin_value"] < 0.05 and mae["pass"] is None


@needs_ci
def test_e8_rows_on_two_days_and_two_grids():
    rows = e8_rows(V100_DIR, countries=("SE", "PL"), days=2.0, check_size="SE", check_fast=None, workers=1)
    by = {r["metric"]: r for r in rows}
    for c in ("SE", "PL"):
        r = by[f"{c}: facility CO2 per unit of work, PUE-aware <= CI-only"]
        assert isinstance(r["pass"], bool) and r["twin_value"] > 0
    lin = by["SE: 50 MW run / (50 x the 1 MW run), worst of CO2 and work"]
    assert lin["pass"] is True  # node groups: 50 MW = 50 x 1 MW to 1e-6
    # PL's grid is several times dirtier than SE's
    assert (by["PL: facility CO2 per unit of work, PUE-aware <= CI-only"]["twin_value"]
            > 5 * by["SE: facility CO2 per unit of work, PUE-aware <= CI-only"]["twin_value"])


def test_e8_without_the_carbon_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="entsoe_ci_2025"):
        e8_rows(tmp_path / "v100_telemetry", countries=("SE",), days=1.0)


@pytest.mark.slow
@needs_ci
def test_full_reproduce_passes_every_toleranced_row(tmp_path):
    """The whole paper table (E2-E4, DAY100, E8 over 28 days): ~12 min on 2 cores."""
    import json
    from twin.reproduce.table import reproduce

    result = reproduce(None, V100_DIR, tmp_path)
    rows = json.loads(result.json_path.read_text())["rows"]
    failed = [r["metric"] for r in rows if r["pass"] is False]
    assert not failed, failed
    assert {r["experiment"] for r in rows} >= {"E2", "E3", "E4", "DAY100", "E8"}
