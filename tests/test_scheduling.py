"""FCFS and EASY backfilling on hand-made queues (times worked out in the comments)."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from twin.sim.scheduling import BatchQueue


def simulate(n_nodes, jobs, backfill):
    """jobs: (submit_s, nodes, run_s, limit_s). Returns {job: (start_s, end_s, nodes)}."""
    env = simpy.Environment()
    log = {}
    sub, nodes, run, limit = (np.array(c) for c in zip(*jobs))
    q = BatchQueue(env, n_nodes, nodes, run, limit,
                   on_start=lambda i, n: log.__setitem__(i, [env.now, None, sorted(n.tolist())]),
                   on_end=lambda i, n: log[i].__setitem__(1, env.now), backfill=backfill)

    def arrivals():
        for i, t in enumerate(sub):
            yield env.timeout(t - env.now)
            q.submit(i)

    env.process(arrivals())
    env.run()
    return log, q


# 4 nodes. Job 0 runs on 3 nodes for 100 s; job 1 (submitted at 1 s) needs all 4 nodes;
# job 2 (at 2 s) needs 1 node for 50 s (limit 60 s); job 3 (at 3 s) needs 1 node for 200 s.
JOBS = [(0.0, 3, 100.0, 100.0), (1.0, 4, 10.0, 10.0), (2.0, 1, 50.0, 60.0), (3.0, 1, 200.0, 200.0)]


def test_fcfs_makes_everyone_wait_behind_the_head():
    log, _ = simulate(4, JOBS, backfill=False)
    # job 1 waits for job 0 (t = 100), jobs 2 and 3 wait behind job 1 (start at 110)
    assert log[1][:2] == [100.0, 110.0]
    assert log[2][0] == 110.0 and log[3][0] == 110.0


def test_easy_backfills_only_what_does_not_delay_the_head():
    log, q = simulate(4, JOBS, backfill=True)
    # head job 1's reservation: job 0's limit ends at 100 s, then 4 nodes are free (extra 0).
    # Job 2 ends by its limit at 2 + 60 = 62 s < 100 s: backfilled at once on the free node.
    assert log[2][:2] == [2.0, 52.0]
    # job 3 would run to 203 s > 100 s on a node job 1 needs: it must wait behind job 1
    assert log[1][:2] == [100.0, 110.0]
    assert log[3][0] == 110.0
    assert q.backfilled == 1


def test_easy_uses_extra_nodes_for_long_jobs():
    # 5 nodes: job 0 on 3 nodes for 100 s; head job 1 needs 4 nodes -> at 100 s there are 5
    # free, 1 extra; long job 2 (1 node, 500 s) may take the extra node now.
    jobs = [(0.0, 3, 100.0, 100.0), (1.0, 4, 10.0, 10.0), (2.0, 1, 500.0, 500.0)]
    log, _ = simulate(5, jobs, backfill=True)
    assert log[2][0] == 2.0
    assert log[1][0] == 100.0  # the head job is not delayed


def test_recorded_start_bypasses_the_queue_and_rejects_busy_nodes():
    env = simpy.Environment()
    q = BatchQueue(env, 4, [2, 2], [10.0, 10.0], [10.0, 10.0], lambda i, n: None, lambda i, n: None)
    q.start_now(0, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"job 1: nodes \[1\] are busy"):
        q.start_now(1, np.array([1, 2]))


def test_a_job_larger_than_the_facility_is_refused():
    with pytest.raises(ValueError, match="every job needs 1..4 nodes"):
        BatchQueue(simpy.Environment(), 4, [5], [1.0], [1.0], lambda i, n: None, lambda i, n: None)
