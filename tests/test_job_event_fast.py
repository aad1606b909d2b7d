"""The job event path's fast code gives the numbers of its reference code, bit for bit.

* ``GpuFleet.set_load`` on an int index array of at most ``loop_max`` cohorts at scalar
  utilisations runs one cohort at a time on Python floats and updates the earliest pending
  rise and the moving index array from the cohorts' own entries. Three fleets are driven
  through the same events and must agree exactly in every state array and total: the
  array path (``loop_max = 0``), the reference loop path (cohorts as a list) and the fast
  path (cohorts as an index array).
* ``BatchQueue`` reads job sizes and limits from Python lists, starts a job with one
  progress read and re-arms a stretched end check with the read it just made; a verbatim
  copy of the previous queue (``ReferenceBatchQueue`` below) on a twin fleet must start and
  end every job at the same times on the same nodes.

No timing here (issue 9's speed is measured by ``bench/``).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import deque
from collections.abc import Callable

import numpy as np
import pytest
import simpy
from test_gpu_fleet_fastpath import _assert_same as assert_fleets_same

from twin.facility.gpu_fleet import GENERIC, GpuFleet
from twin.physics.gpu import GPU_PROFILES, WORKLOADS
from twin.sim.scheduling import BatchQueue

STATE = ("power_w", "target_w", "temp_c", "cap_w", "class_power_w", "speed", "host_power_w", "_pending_w",
         "_pending_at_s", "_settled_cohort_w", "_is_moving", "_moving", "_temp_t_s", "_job_speed", "has_job",
         "gpu_util", "host_util", "workload", "is_trace")


def _fleets(n, profile, hosts=None):
    """(array path, reference loop path, fast path) fleets of ``n`` cohorts."""
    out = []
    for loop_max in (0, 10 ** 9, 10 ** 9):
        f = GpuFleet(profile, gpu_count=np.full(n, 4), host_count=np.ones(n) if hosts is None else hosts,
                     cap_w=profile.max_limit_w * 0.9, host_idle_w=120.0, host_busy_w=410.0)
        f.loop_max = loop_max
        out.append(f)
    return out


def _set_load(fleets, t, cohorts, u, hu, w=GENERIC):
    """The same set_load on each fleet; the reference loop fleet gets the cohorts as a list."""
    cohorts = np.asarray(cohorts)
    for k, f in enumerate(fleets):
        f.set_load(t, cohorts.tolist() if k == 1 else cohorts, u, hu, w)


def _assert_same(fleets):
    for f in fleets:  # the incrementally kept values are the whole-array ones
        assert f._next_due_s == float(f._pending_at_s.min())
        np.testing.assert_array_equal(f._moving, np.flatnonzero(f._is_moving))
    assert_fleets_same(fleets, STATE)


@pytest.mark.parametrize("seed", range(6))
def test_set_load_fast_path_equals_the_reference_paths(seed):
    rng = np.random.default_rng(100 + seed)
    n = 40
    prof = GPU_PROFILES[("V100-SXM2-16GB", "H100-SXM", "A100-SXM4-40GB")[seed % 3]]
    if seed >= 4:
        prof = dataclasses.replace(prof, rise_delay_s=0.0)  # no delayed rises
    hosts = rng.integers(1, 3, n).astype(float) if seed % 2 else None
    fleets = _fleets(n, prof, hosts)
    t = 0.0
    for step in range(500):
        kind = rng.random()
        # many events inside one rise delay: pending rises kept, replaced, cancelled
        t += float(rng.choice([0.0, 0.0, 1e-3, 0.02, 0.05, 0.1101, 0.3, 2.0]))
        size = int(rng.choice([1, 1, 1, 2, 3, 4, 8, 16]))
        cohorts = rng.choice(n, size, replace=False)
        if rng.random() < 0.7:
            cohorts = np.sort(cohorts)
        if kind < 0.55:
            u = float(rng.choice([0.0, 0.2, 0.55, 0.9, 1.0]))
            hu = float(rng.choice([0.0, 0.5, 1.0]))
            w = int(rng.integers(GENERIC, len(WORKLOADS)))
            if rng.random() < 0.5:
                u, hu = np.float64(u), np.float64(hu)  # the engine passes numpy scalars
            _set_load(fleets, t, cohorts, u, hu, w)
        elif kind < 0.75:
            _set_load(fleets, t, cohorts, 0.0, 0.0)  # a job ends
        elif kind < 0.9:
            caps = rng.uniform(prof.min_limit_w, prof.max_limit_w, size)
            if rng.random() < 0.5:
                caps = np.round(caps, -1).clip(prof.min_limit_w, prof.max_limit_w)
            for f in fleets:
                f.set_cap(t, cohorts, caps)
        elif kind < 0.95:
            gpu_w = rng.uniform(0.0, prof.max_limit_w, size)
            for f in fleets:
                f.set_trace_power(t, cohorts, gpu_w, 150.0)
        else:
            for f in fleets:
                f.advance_to(t)
        if step % 10 == 0:
            _assert_same(fleets)
    for dt in (1e-3, 0.1101, 1.0, 60.0):
        t += dt
        for f in fleets:
            f.advance_to(t)
    _assert_same(fleets)


def test_set_load_fast_path_edge_cases():
    prof = GPU_PROFILES["V100-SXM2-16GB"]
    fleets = _fleets(8, prof)
    _set_load(fleets, 0.0, np.array([3, 3]), 0.8, 0.5, 1)  # duplicate cohorts
    _set_load(fleets, 0.0, np.array([-1]), 0.6, 0.5, 0)  # a negative index (cohort 7)
    _set_load(fleets, 0.0, np.array([], dtype=np.int64), 0.6, 0.5, 0)  # no cohort
    _set_load(fleets, 0.01, np.array([5, 2], dtype=np.uint32), 1.0, 0.0, GENERIC)  # unsorted, unsigned
    _set_load(fleets, 0.02, [0], 0.0, 1.0, 2)  # host only: a job without GPU load
    _assert_same(fleets)
    # the cohort holding the earliest pending rise ends before it: the min moves on
    _set_load(fleets, 0.05, np.array([3]), 0.0, 0.0)
    _assert_same(fleets)
    _set_load(fleets, 0.05, np.array([5, 2]), 0.0, 0.0)
    _assert_same(fleets)
    for t in (0.1, 0.1101, 0.12, 0.2, 5.0):
        for f in fleets:
            f.advance_to(t)
        _assert_same(fleets)
    # a bad index raises before anything changes, on every path
    for k, f in enumerate(fleets):
        f.advance_to(6.0)  # set_load advances first (then raises)
        before = {key: np.copy(getattr(f, key)) for key in STATE}
        with pytest.raises(IndexError):
            f.set_load(6.0, [1, 9] if k == 1 else np.array([1, 9]), 0.5, 0.5, 0)
        for key in STATE:
            np.testing.assert_array_equal(getattr(f, key), before[key], err_msg=key)
    _assert_same(fleets)


# --------------------------------------------------------------------------- the queue

def _run_queue(cls, jobs, n_nodes, caps, backfill, seed):
    """Drive queue class ``cls`` with progress from a fleet; returns the log and counters."""
    env = simpy.Environment(initial_time=-100.0)
    prof = GPU_PROFILES["V100-SXM2-16GB"]
    fleet = GpuFleet(prof, gpu_count=np.full(n_nodes, 4), host_count=np.ones(n_nodes), cap_w=prof.max_limit_w,
                     host_idle_w=120.0, host_busy_w=410.0, t0_s=-100.0)
    sub, size, run, limit, util, wk = jobs
    log = {}

    def progress(node):
        fleet.advance_to(env.now)
        return fleet.progress_of(node), float(fleet.speed[node])

    def started(i, nodes):
        fleet.set_load(env.now, nodes, util[i], 0.5, int(wk[i]))
        log[i] = [env.now, None, nodes.tolist()]

    def ended(i, nodes):
        fleet.set_load(env.now, nodes, 0.0, 0.0)
        log[i][1] = env.now

    q = cls(env, n_nodes, size, run, limit, started, ended, backfill=backfill, progress=progress)
    bounds = []

    def arrivals():
        for i, t in enumerate(sub):
            if t > env.now:
                yield env.timeout(t - env.now)
            bounds.append(q.start_bound_s(int(size[i])))
            q.submit(i, front=bool(i % 7 == 3))

    def capping():  # caps move; a reschedule follows only sometimes (stretched end checks)
        for k, (t, cohorts, cap) in enumerate(caps):
            if t > env.now:
                yield env.timeout(t - env.now)
            fleet.set_cap(env.now, cohorts, cap)
            if k % 3:
                q.reschedule()

    env.process(arrivals())
    env.process(capping())
    env.run(until=20000.0)
    return log, bounds, (q.backfilled, q.stretched, q.running, q.n_free, list(q.waiting))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("backfill", [True, False])
def test_queue_equals_the_reference_queue(seed, backfill):
    rng = np.random.default_rng(200 + seed)
    n_nodes, n_jobs = 12, 80
    sub = np.sort(rng.uniform(-100.0, 3000.0, n_jobs))
    sub[5:8] = sub[4]  # simultaneous submissions
    size = rng.integers(1, 7, n_jobs)
    run = rng.uniform(20.0, 600.0, n_jobs)
    limit = run * rng.uniform(1.0, 2.0, n_jobs)
    util = rng.uniform(0.0, 1.0, n_jobs)
    wk = rng.integers(GENERIC, len(WORKLOADS), n_jobs)
    prof = GPU_PROFILES["V100-SXM2-16GB"]
    caps = [(float(t), np.sort(rng.choice(n_nodes, int(rng.integers(1, n_nodes)), replace=False)),
             float(rng.uniform(prof.min_limit_w, prof.max_limit_w)))
            for t in np.sort(rng.uniform(0.0, 4000.0, 40))]
    jobs = (sub, size, run, limit, util, wk)
    got = _run_queue(BatchQueue, jobs, n_nodes, caps, backfill, seed)
    want = _run_queue(ReferenceBatchQueue, jobs, n_nodes, caps, backfill, seed)
    assert got[0] == want[0]  # the same start and end times, on the same nodes
    assert all(v[1] is not None for v in got[0].values())
    assert got[1] == want[1]  # start bounds
    assert got[2] == want[2]
    assert got[2][1] > 0  # some end checks were stretched


def test_queue_without_progress_equals_the_reference_queue():
    rng = np.random.default_rng(7)
    sub = np.sort(rng.uniform(0.0, 500.0, 40))
    size, run = rng.integers(1, 4, 40), rng.uniform(5.0, 100.0, 40)
    logs = []
    for cls in (BatchQueue, ReferenceBatchQueue):
        env, log = simpy.Environment(), {}
        q = cls(env, 5, size, run, run * 1.5,
                lambda i, n, env=env, log=log: log.__setitem__(i, [env.now, None, n.tolist()]),
                lambda i, n, env=env, log=log: log[i].__setitem__(1, env.now))

        def arrivals(env=env, q=q):
            for i, t in enumerate(sub):
                yield env.timeout(t - env.now)
                q.submit(i)

        env.process(arrivals())
        env.run()
        logs.append((log, q.backfilled))
    assert logs[0] == logs[1]


# A verbatim copy of the queue before the job-event fast path (issue 9, round 2), the reference.


class ReferenceBatchQueue:
    """FCFS queue with optional EASY backfilling.

    Parameters
    ----------
    env : simpy.Environment
    n_nodes : int
    num_nodes, run_time_s, time_limit_s : arrays, one entry per job
    on_start, on_end : callables (job index, node indices)
    backfill : bool
        EASY backfilling on (True) or strict FCFS (False).
    """

    def __init__(self, env: simpy.Environment, n_nodes: int, num_nodes, run_time_s, time_limit_s,
                 on_start: Callable, on_end: Callable, backfill: bool = True,
                 progress: Callable | None = None):
        self.env = env
        self.free = np.ones(n_nodes, dtype=bool)
        self.n_free = n_nodes
        self.num_nodes = np.asarray(num_nodes)
        self.run_time_s = np.array(run_time_s, dtype=float)  # a copy: replay may shorten it
        self.time_limit_s = np.maximum(np.asarray(time_limit_s, dtype=float), self.run_time_s)
        if np.any(self.num_nodes > n_nodes) or np.any(self.num_nodes < 1):
            raise ValueError(f"every job needs 1..{n_nodes} nodes (the facility's size)")
        self.waiting: deque[int] = deque()
        self.on_start, self.on_end = on_start, on_end
        self.backfill = backfill
        self.running = 0
        self._limit_end: dict[int, float] = {}  # running job -> start + time limit
        self._ends: list[tuple[float, int]] = []  # (start + time limit, job), sorted
        self._nodes: dict[int, np.ndarray] = {}  # running job -> its nodes
        self.backfilled = 0
        # job progress under power caps: progress(node) -> (full-speed seconds done on the node
        # since t=-inf, current speed); a job ends when its nodes have done run_time_s of work
        self.progress = progress
        self._p0: dict[int, float] = {}       # running job -> its first node's progress at start
        self._version: dict[int, int] = {}    # running job -> id of its live end check
        self.stretched = 0

    def submit(self, i: int, front: bool = False) -> None:
        """Queue job ``i`` (at the head with ``front``: a job released by the carbon-aware
        scheduler near its latest start goes first)."""
        if front:
            self.waiting.appendleft(i)
        else:
            self.waiting.append(i)
        self._schedule()

    def start_bound_s(self, n_nodes: int) -> float:
        """Latest time by which ``n_nodes`` nodes are free if running jobs end at their time
        limits and the job goes to the head of the queue [s] (now if they are free now)."""
        free = self.n_free
        if n_nodes <= free:
            return self.env.now
        for end, j in self._ends:
            free += self.num_nodes[j]
            if free >= n_nodes:
                return max(end, self.env.now)
        return math.inf

    def start_now(self, i: int, nodes: np.ndarray) -> None:
        """Start job ``i`` on the given nodes at once, bypassing the queue (trace replay with
        recorded start times); the nodes must be free."""
        nodes = np.asarray(nodes, dtype=np.int64)
        if not self.free[nodes].all():
            raise ValueError(f"job {i}: nodes {nodes[~self.free[nodes]].tolist()} are busy")
        self._start(i, nodes)

    def running_nodes(self, i: int) -> np.ndarray:
        """Nodes of running job ``i``."""
        return self._nodes[i]

    def _start(self, i: int, nodes: np.ndarray) -> None:
        self.free[nodes] = False
        self.n_free -= nodes.size
        self.running += 1
        self._limit_end[i] = self.env.now + self.time_limit_s[i]
        bisect.insort(self._ends, (self._limit_end[i], i))
        self._nodes[i] = nodes
        self.on_start(i, nodes)
        if self.progress is None:
            done = self.env.timeout(float(self.run_time_s[i]))
            done.callbacks.append(lambda _ev, i=i, nodes=nodes: self._end(i, nodes))
            return
        self._p0[i] = self.progress(int(nodes[0]))[0]
        self._version[i] = 0
        self._check_at(i, nodes)

    def _remaining_s(self, i: int, nodes: np.ndarray) -> tuple[float, float]:
        done, speed = self.progress(int(nodes[0]))
        return float(self.run_time_s[i]) - (done - self._p0[i]), speed

    def _check_at(self, i: int, nodes: np.ndarray) -> None:
        """Schedule job i's end check when its remaining work is done at the current speed."""
        left, speed = self._remaining_s(i, nodes)
        v = self._version[i]
        ev = self.env.timeout(max(left, 0.0) / max(speed, 1e-12))
        ev.callbacks.append(lambda _ev, i=i, nodes=nodes, v=v: self._check(i, nodes, v))

    def _check(self, i: int, nodes: np.ndarray, v: int) -> None:
        if self._version.get(i) != v:
            return  # superseded by a reschedule
        left, _ = self._remaining_s(i, nodes)
        if left <= 1e-6 * max(1.0, float(self.run_time_s[i])):
            del self._version[i], self._p0[i]
            self._end(i, nodes)
        else:  # slowed since the check was set: look again when the rest is done
            self.stretched += 1
            self._check_at(i, nodes)

    def reschedule(self) -> None:
        """Re-plan every running job's end after a speed change (caps raised or lowered)."""
        if self.progress is None:
            return
        for i, nodes in list(self._nodes.items()):
            if i in self._version:
                self._version[i] += 1
                self._check_at(i, nodes)

    def _take(self, i: int) -> None:
        self._start(i, np.flatnonzero(self.free)[: self.num_nodes[i]].copy())  # a copy: a view would pin the whole index array

    def _end(self, i: int, nodes: np.ndarray) -> None:
        self.free[nodes] = True
        self.n_free += nodes.size
        self.running -= 1
        self._ends.pop(bisect.bisect_left(self._ends, (self._limit_end.pop(i), i)))
        del self._nodes[i]
        self.on_end(i, nodes)
        self._schedule()

    def _schedule(self) -> None:
        waiting = self.waiting
        while waiting and self.num_nodes[waiting[0]] <= self.n_free:
            self._take(waiting.popleft())
        if not self.backfill or len(waiting) < 2:
            return
        # reservation of the head job: when will enough nodes be free, by time limits?
        need = self.num_nodes[waiting[0]]
        free = self.n_free
        shadow, extra = np.inf, 0
        for end, j in self._ends:
            free += self.num_nodes[j]
            if free >= need:
                shadow, extra = end, free - need
                break
        now = self.env.now
        kept: deque[int] = deque([waiting.popleft()])
        while waiting:
            j = waiting.popleft()
            n = self.num_nodes[j]
            if n <= self.n_free:
                ends_in_time = now + self.time_limit_s[j] <= shadow
                if ends_in_time or n <= extra:
                    if not ends_in_time:
                        extra -= n
                    self._take(j)
                    self.backfilled += 1
                    continue
            kept.append(j)
            if self.n_free == 0:
                kept.extend(waiting)
                waiting.clear()
        self.waiting = kept
