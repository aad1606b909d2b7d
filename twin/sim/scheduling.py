"""Batch scheduling of jobs onto nodes: first-come first-served, with or without EASY backfilling.

Jobs are rows of columnar arrays (number of nodes, run time, time limit); the queue
calls ``on_start(i, nodes)`` and ``on_end(i, nodes)`` and schedules each end as a SimPy
Timeout (no polling). Nodes are taken lowest index first unless a job asks for given
nodes (trace replay).

EASY backfilling (Lifka 1995, as in Slurm's backfill and most batch systems): the job
at the head of the queue gets a reservation at the earliest time enough nodes will be
free, computed from the running jobs' *time limits* (the only end times a scheduler
knows); a later job may start now if it fits in the free nodes and either ends (by its
time limit) before that reservation or uses only nodes the head job will not need
then. This is the documented choice for replaying job tables without start times.
"""

from __future__ import annotations

import bisect
import math

from collections import deque
from typing import Callable

import numpy as np
import simpy


class BatchQueue:
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
        # the per-event reads as Python numbers (the same values; numpy scalars cost more); sizes
        # and limits are fixed from here on (trace replay shortens run_time_s only, read from the array)
        self._n_l: list[int] = self.num_nodes.tolist()
        self._limit_l: list[float] = self.time_limit_s.tolist()
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
        n_l = self._n_l
        for end, j in self._ends:
            free += n_l[j]
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
        end = self._limit_end[i] = self.env.now + self._limit_l[i]
        bisect.insort(self._ends, (end, i))
        self._nodes[i] = nodes
        self.on_start(i, nodes)
        if self.progress is None:
            done = self.env.timeout(self.run_time_s.item(i), (i, nodes))
            done.callbacks.append(self._on_done)
            return
        # the first end check: nothing has run yet, so the work left is the whole run time
        # (the progress read of _remaining_s at this instant gives done - p0 = 0 exactly)
        done, speed = self.progress(int(nodes[0]))
        self._p0[i] = done
        self._version[i] = 0
        self._check_in(i, nodes, self.run_time_s.item(i) - (done - done), speed, 0)

    def _on_done(self, ev) -> None:
        """A job's end Timeout (no progress model): its value is (job, nodes)."""
        self._end(*ev.value)

    def _remaining_s(self, i: int, nodes: np.ndarray) -> tuple[float, float]:
        done, speed = self.progress(int(nodes[0]))
        return self.run_time_s.item(i) - (done - self._p0[i]), speed

    def _check_at(self, i: int, nodes: np.ndarray) -> None:
        """Schedule job i's end check when its remaining work is done at the current speed."""
        left, speed = self._remaining_s(i, nodes)
        self._check_in(i, nodes, left, speed, self._version[i])

    def _check_in(self, i: int, nodes: np.ndarray, left: float, speed: float, v: int) -> None:
        """Schedule job i's end check (version ``v``) when ``left`` full-speed seconds of work
        are done at ``speed``."""
        ev = self.env.timeout(max(left, 0.0) / max(speed, 1e-12), (i, nodes, v))
        ev.callbacks.append(self._on_check)

    def _on_check(self, ev) -> None:
        """An end check's Timeout: its value is (job, nodes, version)."""
        self._check(*ev.value)

    def _check(self, i: int, nodes: np.ndarray, v: int) -> None:
        if self._version.get(i) != v:
            return  # superseded by a reschedule
        left, speed = self._remaining_s(i, nodes)
        if left <= 1e-6 * max(1.0, self.run_time_s.item(i)):
            del self._version[i], self._p0[i]
            self._end(i, nodes)
        else:  # slowed since the check was set: look again when the rest is done (nothing
            # has changed since the read, so it is the read _check_at would make)
            self.stretched += 1
            self._check_in(i, nodes, left, speed, v)

    def reschedule(self) -> None:
        """Re-plan every running job's end after a speed change (caps raised or lowered)."""
        if self.progress is None:
            return
        for i, nodes in list(self._nodes.items()):
            if i in self._version:
                self._version[i] += 1
                self._check_at(i, nodes)

    def _take(self, i: int) -> None:
        # the lowest free nodes (nonzero of the 1-d mask: np.flatnonzero without its wrapper);
        # a copy: a view would pin the whole index array
        self._start(i, self.free.nonzero()[0][: self._n_l[i]].copy())

    def _end(self, i: int, nodes: np.ndarray) -> None:
        self.free[nodes] = True
        self.n_free += nodes.size
        self.running -= 1
        self._ends.pop(bisect.bisect_left(self._ends, (self._limit_end.pop(i), i)))
        del self._nodes[i]
        self.on_end(i, nodes)
        self._schedule()

    def _schedule(self) -> None:
        waiting, n_l = self.waiting, self._n_l
        while waiting and n_l[waiting[0]] <= self.n_free:
            self._take(waiting.popleft())
        if not self.backfill or len(waiting) < 2:
            return
        # reservation of the head job: when will enough nodes be free, by time limits?
        need = n_l[waiting[0]]
        free = self.n_free
        shadow, extra = math.inf, 0
        for end, j in self._ends:
            free += n_l[j]
            if free >= need:
                shadow, extra = end, free - need
                break
        now, limit_l = self.env.now, self._limit_l
        kept: deque[int] = deque([waiting.popleft()])
        while waiting:
            j = waiting.popleft()
            n = n_l[j]
            if n <= self.n_free:
                ends_in_time = now + limit_l[j] <= shadow
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
