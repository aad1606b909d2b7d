"""Speed must not change results (issue 9 item 3): a fast run against a fine-step reference.

One small facility (20 nodes x 4 V100, 2 h, 2 FFR dips, Tier 2 + the safety island + Tier 1)
is run twice with the same seed and jobs:

* **fast**: the benchmark settings: 1 s base tick (100 ms sub-ticks only inside the FFR
  activation-log windows), Tier 1 (PID, 200 Hz) awake only in its event windows, asleep and
  polling every 100 ms (``PidParams.watch_period_s`` default) otherwise;
* **reference**: 0.1 s base tick everywhere (every plant step 100 ms), and Tier 1 held at
  200 Hz: its sleeping watch reads the plant every 5 ms (``watch_period_s = 0.005``, the
  PID's own tick) instead of every 100 ms. The controller has no switch to stay in its
  window when settled, so this is how it is forced to look at 200 Hz; outside the FFR
  sheds it has no setpoints and nothing to do, at either rate.

Energy, peak facility power on 1 s means, and FR-provision quality (summary
``ffr.ffr_quality_mean``, the mean meter reduction held over the support period against
the committed reserve) must agree within 0.5 %.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from twin.scenario import parse_scenario
from twin.sim.engine import Engine
from twin.sim.metrics import summarise

BASE = {
    "name": "fidelity",
    "start": "2025-07-15T00:00:00Z",
    "duration_h": 2.0,
    "base_tick_s": 1.0,
    "seed": 11,
    "facility": {"nodes": 20, "gpus_per_node": 4, "gpu_model": "V100-SXM2-16GB", "host_idle_w": 300.0,
                 "host_busy_w": 650.0},
    "cooling": {"model": "paper_eq4"},
    "weather": {"model": "climate", "site": "IT"},
    "workload": {"source": "synthetic", "offered_load": 0.8, "warmup_h": 2.0},
    "grid": {"country": "IT", "carbon_source": "constant", "constant_intensity_g_per_kwh": 300.0,
             "constant_carbon_free_fraction": 0.4},
    "frequency": {"source": "synthetic", "ffr_dips": 2},
    "control": {"tier2": "rls_ar", "ffr_gpu": "island", "tier1": "pid"},
    "outputs": {"overview_png": False},
}
TOL = 0.005  # issue 9: within 0.5 %


def _run(folder, base_tick_s: float, watch_period_s: float | None) -> tuple[dict, pd.DataFrame]:
    raw = json.loads(json.dumps(BASE))
    raw["base_tick_s"] = base_tick_s
    eng = Engine(parse_scenario(raw, "fidelity.toml"), folder)
    if watch_period_s is not None:
        t1 = eng.control.tier1
        t1.params = dataclasses.replace(t1.params, watch_period_s=watch_period_s)  # before the process starts
    eng.run()
    eng.site.ledger.check()
    summary = summarise(eng, wall_s=1.0, peak_rss_mb=0.0, version="test")
    return summary, pd.read_parquet(folder / "timeseries.parquet")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    fast = _run(tmp_path_factory.mktemp("fast"), 1.0, None)
    ref = _run(tmp_path_factory.mktemp("reference"), 0.1, 0.005)
    return fast, ref


def test_both_runs_shed_on_every_dip(runs):
    (fast, _), (ref, _) = runs
    for s in (fast, ref):
        assert s["ffr"]["activations"] == 2
        assert s["control"]["island"]["tier1"]["windows"] >= 2
    # the reference's Tier 1 looked at the plant at 200 Hz while holding the shed
    assert ref["control"]["island"]["tier1"]["watch_polls"] > 10 * fast["control"]["island"]["tier1"]["watch_polls"]


@pytest.mark.parametrize("key", ["it_energy_kwh", "gpu_energy_kwh", "facility_energy_kwh", "grid_energy_kwh"])
def test_energy_agrees(runs, key):
    (fast, _), (ref, _) = runs
    assert fast[key] == pytest.approx(ref[key], rel=TOL)


def test_peak_power_on_one_second_means_agrees(runs):
    (_, fast_ts), (_, ref_ts) = runs
    ref_1s = ref_ts["facility_power_w"].to_numpy().reshape(-1, 10).mean(axis=1)
    assert len(ref_1s) == len(fast_ts)
    assert fast_ts["facility_power_w"].max() == pytest.approx(ref_1s.max(), rel=TOL)


def test_fr_provision_quality_agrees(runs):
    (fast, _), (ref, _) = runs
    qf, qr = fast["ffr"]["ffr_quality_mean"], ref["ffr"]["ffr_quality_mean"]
    assert qf is not None and qr is not None and qr > 0.5
    assert qf == pytest.approx(qr, rel=TOL)
    for ef, er in zip(fast["ffr"]["events"], ref["ffr"]["events"]):
        assert ef["min_reduction_fraction"] == pytest.approx(er["min_reduction_fraction"], rel=TOL)
    assert np.isfinite(qf)
