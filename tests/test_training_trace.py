"""AI-training power signature (traces/training.py): values, exact energy, edges.

Hand arithmetic in the comments; tolerances stated. Default job: peak 300 MW, swing
0.5 (low 150 MW), period 1.5 s, duty 0.7 (compute 1.05 s, comm 0.45 s), edges 40 ms.
"""

from __future__ import annotations

import numpy as np
import pytest

from traces.training import (
    TrainingPowerParams,
    TrainingPowerTrace,
    training_edges_s,
    training_energy_j,
    training_power_w,
)

MW = 1e6


@pytest.fixture
def trace():
    return TrainingPowerTrace(TrainingPowerParams(300 * MW))


@pytest.mark.parametrize("kwargs, match", [
    ({"period_s": 0.2}, "period_s"),           # below 1/3 s (3 Hz)
    ({"swing_fraction": 1.5}, "swing_fraction"),
    ({"edge_ramp_s": 0.5}, "edge_ramp_s"),     # longer than the 0.45 s comm phase
    ({"compute_duty": 1.0}, "compute_duty"),
    ({"end_s": -1.0}, "end_s"),
    ({"checkpoint_power_fraction": -0.1}, "checkpoint_power_fraction"),
])
def test_invalid_parameters_raise_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainingPowerParams(300 * MW, **kwargs)


def test_power_levels_and_ramps(trace):
    t = np.array([-1.0, 0.02, 0.5, 1.07, 1.2, 1.52])
    # before start 0; mid start ramp 0 -> 300 MW: 150; compute 300; mid fall 300 -> 150
    # (starts at 1.05 s, 40 ms long): 225; comm 150; mid next rise (1.50 s): 225
    expected = np.array([0.0, 150.0, 300.0, 225.0, 150.0, 225.0]) * MW
    np.testing.assert_allclose(trace.power_w(t), expected, rtol=1e-9, atol=1e-3)
    # a 300 MW job swings 150 MW (the brief's default)
    assert trace.params.peak_power_w - trace.params.low_power_w == pytest.approx(150 * MW, rel=1e-15)


def test_energy_of_first_iteration_is_exact(trace):
    # square wave: 300 MW x 1.05 s + 150 MW x 0.45 s = 315 + 67.5 = 382.5 MJ;
    # start ramp from 0 loses 300 x 0.04 / 2 = 6 MJ; the fall at 1.05 s is delayed by
    # half a ramp: + 150 x 0.04 / 2 = 3 MJ  ->  379.5 MJ
    assert trace.energy_j(0.0, 1.5) == pytest.approx(379.5 * MW, rel=1e-12)
    # cross-check against a dense trapezoid (1 us grid; error << 1e-6 relative)
    t = np.linspace(0.0, 1.5, 1_500_001)
    assert trace.energy_j(0.0, 1.5) == pytest.approx(np.trapezoid(trace.power_w(t), t), rel=1e-6)


def test_energy_is_additive_over_random_intervals(trace):
    rng = np.random.default_rng(20260501)
    pts = np.sort(rng.uniform(-5.0, 4000.0, size=3))
    a, b, c = pts
    # integral over [a, c] = [a, b] + [b, c] to floating rounding (1e-12 relative)
    assert trace.energy_j(a, c) == pytest.approx(trace.energy_j(a, b) + trace.energy_j(b, c), rel=1e-12)
    # vectorised over intervals
    t0 = np.array([0.0, 1.5])
    np.testing.assert_allclose(trace.energy_j(t0, t0 + 1.5), [379.5 * MW, 382.5 * MW], rtol=1e-12)


def test_hyperperiod_structure_data_load_and_checkpoint(trace):
    p = trace.params
    # n_dl = round(600 / 1.5) = 400; cycle 400 x 1.5 + 10 = 610 s; n_ck = round(1800/610) = 3;
    # hyperperiod 3 x 610 + 60 = 1890 s
    assert (p.iterations_per_data_load, p.cycle_s, p.cycles_per_checkpoint, p.hyperperiod_s) == (400, 610.0, 3, 1890.0)
    # data load 600-610 s at 0.4 x 300 = 120 MW; checkpoint 1830-1890 s at 0.3 x 300 = 90 MW
    np.testing.assert_allclose(trace.power_w([605.0, 1860.0, 1890.5]), [120 * MW, 90 * MW, 300 * MW], rtol=1e-9)
    # hyperperiod energy: 3 x (400 x 382.5 + 10 x 120) + 60 x 90 = 468 000 MJ; mean 247.619 MW
    assert trace.mean_power_w() == pytest.approx(468_000 * MW / 1890.0, rel=1e-12)
    # the ramps delay the signal by r/2 = 0.02 s and the level before 0 is 0, so
    # E[0, H] = int_{-0.02}^{H - 0.02} s = 468 000 - 0.02 s x 90 MW = 467 998.2 MJ
    assert trace.energy_j(0.0, 1890.0) == pytest.approx(467_998.2 * MW, rel=1e-12)


def test_edges_and_knots(trace):
    # iteration edges: rise at 0, fall at 1.05, rise at 1.5, fall at 2.55, rise at 3.0
    np.testing.assert_allclose(trace.edges_s(0.0, 3.1), [0.0, 1.05, 1.5, 2.55, 3.0], atol=1e-12)
    np.testing.assert_allclose(training_edges_s(0.0, 3.1, trace.params), [0.0, 1.05, 1.5, 2.55, 3.0], atol=1e-12)
    # data-load pause: last comm phase ends and the pause starts at 600 s, training resumes at 610 s
    np.testing.assert_allclose(trace.edges_s(599.0, 611.0), [599.55, 600.0, 610.0], atol=1e-9)
    # knots are edges and edges + 40 ms
    np.testing.assert_allclose(trace.knots_s(0.0, 1.2), [0.04, 1.05, 1.09], atol=1e-12)


def test_job_end_ramps_down():
    p = TrainingPowerParams(300 * MW, end_s=10.0)
    tr = TrainingPowerTrace(p)
    # at 10 s the job is in iteration 7's compute phase (9.0-10.05 s): 300 -> 0 over 40 ms
    np.testing.assert_allclose(tr.power_w([9.99, 10.02, 10.05]), [300 * MW, 150 * MW, 0.0], rtol=1e-9, atol=1e-3)
    assert 10.0 in tr.edges_s(9.5, 11.0)
    assert training_power_w(20.0, p) == 0.0
    assert training_energy_j(10.04, 20.0, p) == pytest.approx(0.0, abs=1e-3)


def test_zero_ramp_gives_the_square_wave():
    tr = TrainingPowerTrace(TrainingPowerParams(100 * MW, edge_ramp_s=0.0))
    np.testing.assert_allclose(tr.power_w([0.0, 1.049, 1.05, 1.499]), [100 * MW, 100 * MW, 50 * MW, 50 * MW])
    # 100 x 1.05 + 50 x 0.45 = 127.5 MJ exactly
    assert tr.energy_j(0.0, 1.5) == pytest.approx(127.5 * MW, rel=1e-12)
