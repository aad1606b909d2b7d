"""The cascade under simpy.rt.RealtimeEnvironment against the recording fake: the HIL code path.

The controllers read no clock but ``env.now``; the real-time environment paces the same
processes against the wall clock (here 20x faster than real time, ``strict=False``: a
late event is run late, not an error). What the controllers did is read back from the
fake's record of calls, stamped in simulated time.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import simpy
import simpy.rt

from twin.control.cascade import Cascade
from twin.control.fake import FakeGpuPlant
from twin.control.tier1_pid import PidParams
from twin.control.tier2_ar import RlsAr, rebalance_caps

P = PidParams()
FACTOR = 0.05  # wall seconds per simulated second


def tier1_windows(reads: np.ndarray, tick_s: float) -> list[np.ndarray]:
    """Split read times into runs spaced by one tick (Tier-1 windows)."""
    gaps = np.flatnonzero(~np.isclose(np.diff(reads), tick_s, rtol=0, atol=1e-9))
    return [w for w in np.split(reads, gaps + 1) if w.size > 1]


def test_tier1_alone_in_real_time():
    env = simpy.rt.RealtimeEnvironment(factor=FACTOR, strict=False)
    plant = FakeGpuPlant([300.0, 300.0], lambda: env.now)
    cascade = Cascade(env, plant, P)

    def operator():
        yield env.timeout(0.5)
        cascade.set_setpoints([200.0, 250.0])
        yield env.timeout(1.5)  # t = 2.0
        cascade.set_setpoints([170.0, 250.0])

    env.process(operator())
    wall0 = time.monotonic()
    env.run(until=3.0)
    wall = time.monotonic() - wall0
    assert wall < 2.0
    assert wall >= 0.9 * 3.0 * FACTOR  # it really was paced

    reads = np.array([c.t_s for c in plant.calls_of("read_power_w")])
    windows = tier1_windows(reads[reads >= 0.5], P.tick_s)
    assert len(windows) == 2
    first, second = windows
    assert first[0] == pytest.approx(0.5) and second[0] == pytest.approx(2.0)  # wakes at the setpoint
    for w in windows:  # 200 Hz inside, asleep (settled) well before the next event
        np.testing.assert_allclose(np.diff(w), P.tick_s, atol=1e-9)
        assert w[-1] - w[0] < 0.6
    between = reads[(reads > first[-1]) & (reads < 2.0)]
    np.testing.assert_allclose(np.diff(between), P.watch_period_s, rtol=1e-6)  # asleep: 10 Hz watch only
    assert cascade.tier1.windows == 2 and not cascade.tier1.awake
    np.testing.assert_allclose(plant.read_power_w(), [170.0, 250.0], rtol=P.settle_band_frac)
    with pytest.raises(ValueError, match="no Tier 2"):
        cascade.set_envelope(400.0)


class ShareStub:
    """Tier-2 stand-in predicting fixed shares (1 : 3): the split must follow the predictor."""

    def __init__(self):
        self.updates = []

    def update(self, y):
        self.updates.append(np.array(y))

    def predict(self):
        return np.array([1.0, 3.0])


def test_tier2_splits_the_envelope_and_tier1_follows_in_real_time():
    env = simpy.rt.RealtimeEnvironment(factor=FACTOR, strict=False)
    plant = FakeGpuPlant([300.0, 300.0], lambda: env.now)
    stub = ShareStub()
    cascade = Cascade(env, plant, P, stub)

    def grid():
        yield env.timeout(1.5)
        cascade.set_envelope(450.0)  # after the first Tier-2 tick: shares 1 : 3 -> 150 / 300 W clipped

    env.process(grid())
    wall0 = time.monotonic()
    env.run(until=3.2)
    assert time.monotonic() - wall0 < 2.0
    assert cascade.tier2_ticks == 3 and len(stub.updates) == 3
    expected = rebalance_caps(450.0, np.array([[1.0, 3.0]]), 150.0, 300.0).ravel()
    np.testing.assert_allclose(cascade.tier1.setpoint_w, expected)
    reads = np.array([c.t_s for c in plant.calls_of("read_power_w")])
    windows = tier1_windows(reads, P.tick_s)
    assert windows[0][0] == pytest.approx(1.5)  # the envelope acts at once, not at the next Tier-2 tick
    np.testing.assert_allclose(plant.read_power_w(), expected, rtol=P.settle_band_frac)
    assert cascade.retargets == 0  # Tier 2's later ticks found nothing to move
    with pytest.raises(ValueError, match="has a Tier 2"):
        cascade.set_setpoints([200.0, 200.0])


def test_with_the_rls_ar_predictor():
    """The real Tier 2 (AR(4) by RLS) in the loop: the envelope is held, split by prediction."""
    env = simpy.Environment()
    plant = FakeGpuPlant([300.0, 200.0, 260.0, 120.0], lambda: env.now)
    cascade = Cascade(env, plant, P, RlsAr(4), hosts=2)

    def grid():
        yield env.timeout(6.5)
        cascade.set_envelope([420.0, 330.0])

    env.process(grid())
    env.run(until=12.0)
    power = plant.read_power_w()
    host_w = power.reshape(2, 2).sum(axis=1)
    assert np.all(host_w <= np.array([420.0, 330.0]) * (1 + P.settle_band_frac))
    assert host_w[0] == pytest.approx(420.0, rel=0.03)  # both GPUs of host 0 can use their share
    assert power[3] == pytest.approx(120.0, rel=0.01)  # a demand-limited GPU draws its demand
    assert cascade.tier2_ticks == 11  # at 1 s, 2 s, ..., 11 s (run(until=12) stops before 12 s)


def test_bad_layout_is_rejected():
    env = simpy.Environment()
    plant = FakeGpuPlant([300.0, 300.0, 300.0], lambda: env.now)
    with pytest.raises(ValueError, match="hosts"):
        Cascade(env, plant, P, hosts=2)
    with pytest.raises(ValueError, match="period_s"):
        Cascade(env, plant, P, period_s=0.0)
