"""Jobs slow down under power caps: progress integrates the cohort's speed exactly."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from twin.facility.gpu_fleet import GpuFleet
from twin.physics.gpu import GPU_PROFILES, WORKLOADS, throughput_iter_per_s
from twin.sim.scheduling import BatchQueue

V100 = GPU_PROFILES["V100-SXM2-32GB"]


def setup(util=0.6):
    env = simpy.Environment()
    fleet = GpuFleet(V100, gpu_count=np.full(2, 4), host_count=np.ones(2), cap_w=300.0, host_idle_w=100.0,
                     host_busy_w=300.0)
    ends = {}

    def progress(node):
        fleet.advance_to(env.now)
        return float(fleet.progress_s[node]), float(fleet.speed[node])

    q = BatchQueue(env, 2, [1], [1000.0], [5000.0],
                   lambda i, nodes: fleet.set_load(env.now, nodes, util, 0.5, WORKLOADS.index("compute_bound")),
                   lambda i, nodes: ends.__setitem__(i, env.now), progress=progress)
    return env, fleet, q, ends


def test_uncapped_job_ends_at_its_run_time():
    env, fleet, q, ends = setup()
    q.submit(0)
    env.run(until=2000.0)
    assert ends[0] == pytest.approx(1000.0, abs=1e-9)
    assert fleet.speed[0] == 1.0  # at the configured cap: the run time's own speed


def test_a_cap_halfway_stretches_the_rest_by_the_throughput_ratio():
    util = 0.6
    env, fleet, q, ends = setup(util)
    q.submit(0)

    def cap_at_400():
        yield env.timeout(400.0)
        fleet.set_cap(env.now, np.array([0]), 150.0)
        q.reschedule()

    env.process(cap_at_400())
    env.run(until=5000.0)
    # rho = X(150 W) / X(300 W) for the compute-bound kernel; the kernels take util of the time:
    # speed = 1 / ((1 - util) + util / rho); the remaining 600 full-speed seconds take 600 / speed
    x = throughput_iter_per_s(np.array([150.0, 300.0]), V100.max_sm_clock_mhz, "compute_bound", profile=V100)
    rho = x[0] / x[1]
    assert 0.3 < rho < 0.95  # the cap binds: slower kernels
    speed = 1.0 / ((1.0 - util) + util / rho)
    assert fleet.speed[0] == pytest.approx(speed, rel=1e-12)
    assert ends[0] == pytest.approx(400.0 + 600.0 / speed, rel=1e-9)


def test_a_late_raise_is_honoured_after_reschedule():
    env, fleet, q, ends = setup()
    q.submit(0)

    def cap_then_raise():
        yield env.timeout(100.0)
        fleet.set_cap(env.now, np.array([0]), 150.0)
        q.reschedule()
        slow = fleet.speed[0]
        yield env.timeout(100.0)
        fleet.set_cap(env.now, np.array([0]), 300.0)
        q.reschedule()
        ends["expected"] = 200.0 + (1000.0 - 100.0 - 100.0 * slow)

    env.process(cap_then_raise())
    env.run(until=5000.0)
    assert ends[0] == pytest.approx(ends["expected"], rel=1e-9)
