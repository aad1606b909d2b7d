"""GpuPlant contract, run against the in-package fake and the twin's fleet (and, later, NVML).

Each backend is built by a factory that returns the plant, a function that moves its
clock, and the per-cohort demand it was given (uncapped power [W]).
"""

from __future__ import annotations

import numpy as np
import pytest

from twin.control.fake import FakeGpuPlant, PlantCall, SampleHoldPlant
from twin.control.plant import CapOutOfRangeError, GpuPlant
from twin.facility.gpu_fleet import GpuFleet, TwinGpuPlant
from twin.physics.gpu import GPU_PROFILES

V100 = GPU_PROFILES["V100-SXM2-32GB"]
DEMAND_W = np.array([300.0, 250.0, 120.0])  # per cohort; 300 = util 1, 250 and 120 partial


class Clock:
    """A hand-moved clock (the tests' stand-in for env.now)."""

    def __init__(self):
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


def make_fake():
    clock = Clock()
    return FakeGpuPlant(DEMAND_W, clock), clock


def make_twin():
    clock = Clock()
    fleet = GpuFleet(V100, [1, 1, 1], [1, 1, 1], cap_w=300.0, host_idle_w=0.0, host_busy_w=0.0)
    util = (DEMAND_W - V100.idle_w) / (V100.max_limit_w - V100.idle_w)  # generic model: idle + u (TDP - idle)
    for i, u in enumerate(util):
        fleet.set_load(0.0, [i], u, 0.0)
    fleet.advance_to(5.0)  # settle at the demand
    clock.t_s = 5.0
    return TwinGpuPlant(fleet, clock), clock


BACKENDS = {"fake": make_fake, "twin": make_twin}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    return BACKENDS[request.param]()


def test_is_a_gpu_plant(backend):
    plant, _ = backend
    assert isinstance(plant, GpuPlant)
    assert plant.n_cohorts == 3
    lo, hi = plant.power_limits_w()
    np.testing.assert_array_equal(lo, [150.0] * 3)
    np.testing.assert_array_equal(hi, [300.0] * 3)


@pytest.mark.parametrize("caps", [[100.0], [320.0], [200.0, np.nan]])
def test_out_of_range_cap_raises_and_sets_nothing(backend, caps):
    plant, _ = backend
    before = plant.read_power_cap_w()
    cohorts = np.arange(len(caps))
    with pytest.raises(CapOutOfRangeError, match="outside its power-limit range") as info:
        plant.set_power_cap_w(cohorts, np.array(caps))
    assert isinstance(info.value, ValueError)  # callers may catch either
    np.testing.assert_array_equal(plant.read_power_cap_w(), before)


def test_reads_reflect_writes(backend):
    plant, _ = backend
    plant.set_power_cap_w(np.array([0, 2]), np.array([210.0, 175.5]))
    np.testing.assert_array_equal(plant.read_power_cap_w(), [210.0, 300.0, 175.5])
    plant.set_power_cap_w(np.array([1]), np.array([150.0]))  # the limits themselves are in range
    np.testing.assert_array_equal(plant.read_power_cap_w(), [210.0, 150.0, 175.5])


def test_power_converges_to_min_of_demand_and_cap(backend):
    plant, clock = backend
    caps = np.array([200.0, 280.0, 150.0])
    plant.set_power_cap_w(np.arange(3), caps)
    clock.t_s += 0.05  # 3 tau_down: a step down is 95 % done
    mid = plant.read_power_w()
    target = np.minimum(DEMAND_W, caps)
    assert np.all(np.abs(mid - target) <= 0.05 * np.abs(DEMAND_W - target) + 1e-6)
    plant.set_power_cap_w(np.array([0]), np.array([300.0]))  # step up: slower (tau_up 249 ms)
    clock.t_s += 3.0  # 12 tau_up
    np.testing.assert_allclose(plant.read_power_w(), np.minimum(DEMAND_W, [300.0, 280.0, 150.0]), rtol=1e-4)


# ----------------------------------------------------------------------------- fake only


def test_fake_records_every_call_with_time_arguments_and_result():
    plant, clock = make_fake()
    plant.read_power_w()
    clock.t_s = 0.005
    plant.set_power_cap_w(np.array([1]), np.array([200.0]))
    caps = np.array([250.0])
    clock.t_s = 0.010
    plant.set_power_cap_w(np.array([0]), caps)
    caps[0] = 999.0  # the record keeps a copy
    with pytest.raises(CapOutOfRangeError):
        plant.set_power_cap_w(np.array([2]), np.array([100.0]))
    plant.read_power_cap_w()
    assert [(c.method, c.t_s) for c in plant.calls] == [
        ("read_power_w", 0.0), ("set_power_cap_w", 0.005), ("set_power_cap_w", 0.010),
        ("set_power_cap_w", 0.010), ("read_power_cap_w", 0.010)]
    assert all(isinstance(c, PlantCall) for c in plant.calls)
    np.testing.assert_array_equal(plant.calls[0].result, DEMAND_W)  # settled at min(demand, 300 W)
    np.testing.assert_array_equal(plant.calls[2].args[1], [250.0])
    assert plant.calls[3].result is None  # the refused write is recorded too
    np.testing.assert_array_equal(plant.calls[-1].result, [250.0, 200.0, 300.0])
    assert [c.t_s for c in plant.calls_of("set_power_cap_w")] == [0.005, 0.010, 0.010]


def test_fake_is_deterministic_and_exact():
    """Two runs give identical records; the lag is the closed form (200 -> 300 W step)."""
    def run():
        plant, clock = make_fake()
        plant.set_power_cap_w(np.array([0]), np.array([200.0]))
        clock.t_s = 1.0
        plant.set_power_cap_w(np.array([0]), np.array([300.0]))
        clock.t_s = 1.0 + V100.tau_up_s
        return plant, plant.read_power_w()

    (a, pa), (b, pb) = run(), run()
    assert [(c.method, c.t_s) for c in a.calls] == [(c.method, c.t_s) for c in b.calls]
    np.testing.assert_array_equal(pa, pb)
    # after one tau_up from ~200 W the gap to 300 W is down to e^-1 (200 W reached after 1 s of 64 tau_down)
    assert pa[0] == pytest.approx(300.0 - 100.0 * np.exp(-1.0), rel=1e-9)


def test_fake_demand_change_and_bad_clock():
    plant, clock = make_fake()
    plant.set_demand_w(np.array([2]), np.array([200.0]))
    clock.t_s = 5.0
    assert plant.read_power_w()[2] == pytest.approx(200.0)
    clock.t_s = 4.0
    with pytest.raises(ValueError, match="non-decreasing"):
        plant.read_power_w()
    with pytest.raises(ValueError, match="demand_w"):
        FakeGpuPlant([-1.0], Clock())


def test_sample_hold_refreshes_every_20_ms():
    fake, clock = make_fake()
    plant = SampleHoldPlant(fake, clock)
    plant.set_power_cap_w(np.array([0]), np.array([150.0]))  # power falls with tau_down 15.6 ms
    seen = []
    for k in range(9):  # 0, 5, ..., 40 ms
        clock.t_s = 0.005 * k
        seen.append(plant.read_power_w()[0])
    assert seen[0] == seen[1] == seen[2] == seen[3] == 300.0
    assert seen[4] == seen[5] == seen[6] == seen[7] < 300.0
    assert seen[8] < seen[4]
    # the wrapped plant was read only at the refresh instants
    assert [c.t_s for c in fake.calls_of("read_power_w")] == [0.0, 0.02, 0.04]
    assert isinstance(plant, GpuPlant)
    with pytest.raises(ValueError, match="refresh_s"):
        SampleHoldPlant(fake, clock, refresh_s=0.0)


def test_fake_rise_delay_holds_a_raise_but_not_a_cut():
    clock = Clock()
    plant = FakeGpuPlant([300.0], clock, cap_w=200.0, rise_delay_s=0.11)
    plant.set_power_cap_w(np.array([0]), np.array([280.0]))
    assert plant.read_power_cap_w()[0] == 280.0  # NVML reports the written limit at once
    clock.t_s = 0.10
    assert plant.read_power_w()[0] == 200.0  # nothing moves during the dead time
    clock.t_s = 0.11 + V100.tau_up_s
    assert plant.read_power_w()[0] == pytest.approx(280.0 - 80.0 * np.exp(-1.0))
    plant.set_power_cap_w(np.array([0]), np.array([290.0]))
    plant.set_power_cap_w(np.array([0]), np.array([150.0]))  # a cut acts now and voids the pending raise
    clock.t_s += 1.0
    assert plant.read_power_w()[0] == pytest.approx(150.0)
    with pytest.raises(ValueError, match="rise_delay_s"):
        FakeGpuPlant([300.0], clock, rise_delay_s=-1.0)
