"""Carbon-aware scheduler: hand-checked forecasts and thresholds, deadline safety, the 80 % cap."""

from __future__ import annotations

import numpy as np
import pytest

from twin.control.scheduler import (
    FORECAST_METHODS,
    HOUR_S,
    CarbonScheduler,
    DeferrableJob,
    HourlySignal,
    SchedulerParams,
    deferral_threshold,
    forecast_hourly,
    high_signal_windows_s,
    planned_start_s,
    should_defer,
    throttle_cap_fraction,
)


def test_forecast_methods_constant():
    assert FORECAST_METHODS == ("perfect", "persistence", "seasonal_naive")


def test_forecasts_hand_checked():
    v = np.arange(72.0)  # values[h] = h
    # perfect from hour 30: hours 30..53
    np.testing.assert_array_equal(forecast_hourly(v, 30, 24, "perfect"), np.arange(30.0, 54.0))
    # persistence: the last complete hour (29) held
    np.testing.assert_array_equal(forecast_hourly(v, 30, 24, "persistence"), np.full(24, 29.0))
    # seasonal naive: hour 30 + j takes hour 30 + j - 24 -> 6..29
    np.testing.assert_array_equal(forecast_hourly(v, 30, 24, "seasonal_naive"), np.arange(6.0, 30.0))
    # beyond a day ahead: j = 24..29 -> m = 2 -> hour 30 + j - 48 = 6..11 (the last observed day again)
    np.testing.assert_array_equal(forecast_hourly(v, 30, 30, "seasonal_naive")[24:], np.arange(6.0, 12.0))


@pytest.mark.parametrize("k, h, method, msg", [
    (60, 24, "perfect", "ends at hour 71"),          # needs 60..83
    (0, 24, "persistence", "hour now_index - 1"),
    (23, 24, "seasonal_naive", "from -1 on"),        # 23 + 0 - 24 = -1
    (30, 24, "weather_app", "expected one of"),
    (30, 0, "perfect", "horizon_h"),
    (72, 24, "persistence", "now_index"),
])
def test_forecasts_refuse_what_they_cannot_know(k, h, method, msg):
    with pytest.raises(ValueError, match=msg):
        forecast_hourly(np.arange(72.0), k, h, method)


def test_threshold_is_the_66th_percentile():
    # 24 values 0..23: numpy's linear rule puts the 66th percentile at position 0.66 x 23 = 15.18
    assert deferral_threshold(np.arange(24.0)) == pytest.approx(15.18, abs=1e-12)
    # values 10, 20, 30, 40: position 0.66 x 3 = 1.98 -> 20 + 0.98 x 10 = 29.8
    assert deferral_threshold([40.0, 10.0, 30.0, 20.0]) == pytest.approx(29.8, abs=1e-12)


def test_high_windows_merge_consecutive_hours():
    w = high_signal_windows_s([1.0, 5.0, 5.0, 1.0, 5.0], 3.0, 7200.0)
    # hours 1-2 and 4 are high: [7200 + 3600, 7200 + 10800) and [7200 + 14400, 7200 + 18000)
    np.testing.assert_array_equal(w, [[10800.0, 18000.0], [21600.0, 25200.0]])
    assert high_signal_windows_s([1.0, 1.0], 3.0, 0.0).shape == (0, 2)


def test_deferral_hand_checked():
    w = [[0.0, 7200.0]]  # high for the first two hours
    job = DeferrableJob(1, submit_s=0.0, run_s=3600.0, deadline_s=4 * HOUR_S)   # latest start 3 h
    assert should_defer(job, 0.0, w) and planned_start_s(job, 0.0, w) == 7200.0
    tight = DeferrableJob(2, submit_s=0.0, run_s=3600.0, deadline_s=2.5 * HOUR_S)  # latest start 1.5 h
    assert planned_start_s(tight, 0.0, w) == 5400.0          # inside the window, but its last chance
    assert not should_defer(tight, 5400.0, w)                # at its latest start it starts anyway
    rigid = DeferrableJob(3, submit_s=0.0, run_s=3600.0, deadline_s=10 * HOUR_S, flexible=False)
    assert not should_defer(rigid, 0.0, w)
    assert not should_defer(job, 7200.0, w)                  # window over: run


def _simulate_starts(sched_by_hour, jobs, origin_s):
    """Start time of each job: re-planned at submission and at every hour start, started at
    the planned time when that falls before the next re-plan (what an engine would do)."""
    starts = {}
    for job in jobs:
        t = job.submit_s
        while True:
            k = int(np.floor((t - origin_s) / HOUR_S))
            p = planned_start_s(job, t, sched_by_hour[k])
            nxt = origin_s + (k + 1) * HOUR_S
            if p < nxt:
                starts[job.job_id] = p
                break
            t = nxt
    return starts


def test_property_deferral_never_misses_a_deadline():
    rng = np.random.default_rng(20240607)
    origin = -24 * HOUR_S          # one day of history before t = 0
    n_hours = 24 + 48 + 24 + 24 + 2  # history, submissions, slack, look-ahead
    deferred_total = forced_total = 0
    for case in range(250):
        signal = HourlySignal(rng.lognormal(5.5, 0.4, n_hours), start_s=origin)
        params = SchedulerParams(forecast=FORECAST_METHODS[case % 3])
        sched = CarbonScheduler(signal, params)
        by_hour = {}
        for k in range(24, n_hours - 26):
            by_hour[k] = sched.update(origin + k * HOUR_S).copy()
        jobs = []
        for i in range(int(rng.integers(1, 30))):
            run = rng.uniform(0.05, 10.0) * HOUR_S
            slack = rng.choice([0.0, rng.uniform(0.0, 2.0), -0.1])  # -0.1: an infeasible deadline
            submit = rng.uniform(0.0, 48.0) * HOUR_S
            jobs.append(DeferrableJob(i, submit, run, submit + run * (1.0 + slack), bool(rng.random() < 0.8)))
        starts = _simulate_starts(by_hour, jobs, origin)
        for job in jobs:
            s = starts[job.job_id]
            assert s >= job.submit_s
            if job.latest_start_s >= job.submit_s:
                assert s + job.run_s <= job.deadline_s + 1e-6, (case, job, s)   # never misses
            else:
                assert s == job.submit_s                                       # hopeless: at once
            if not job.flexible:
                assert s == job.submit_s
            # a deferred job starts outside a high window, unless forced at its latest start
            if s > job.submit_s:
                deferred_total += 1
                k = int(np.floor((s - origin) / HOUR_S))
                w = by_hour[k] if s < origin + (k + 1) * HOUR_S else by_hour[k + 1]
                inside = throttle_cap_fraction(s, w) < 1.0
                forced = abs(s - job.latest_start_s) < 1e-6
                forced_total += forced
                assert forced or not inside, (case, job, s)
            else:
                # started at submission: either not flexible, out of time, or not in a high window
                w = by_hour[int(np.floor((s - origin) / HOUR_S))]
                assert (not job.flexible) or s >= job.latest_start_s or throttle_cap_fraction(s, w) == 1.0
    assert deferred_total > 100 and forced_total > 0  # the loop exercised deferral and the deadline guard


def test_property_cap_applies_exactly_inside_high_hours():
    rng = np.random.default_rng(11)
    for case in range(200):
        n = 24 + 72
        signal = HourlySignal(rng.lognormal(5.0, 0.5, n), start_s=0.0)
        sched = CarbonScheduler(signal, SchedulerParams(forecast=FORECAST_METHODS[case % 3]))
        k = int(rng.integers(24, n - 24))
        sched.update(k * HOUR_S + rng.uniform(0, HOUR_S))   # any instant of hour k
        f, thr = sched.forecast, sched.threshold
        assert thr == pytest.approx(np.percentile(f, 66.0))
        # sample instants in every look-ahead hour, including both edges of the hour
        for j in range(24):
            for t in (k + j) * HOUR_S + np.array([0.0, rng.uniform(0, HOUR_S), HOUR_S - 1e-6]):
                expect = 0.8 if f[j] > thr else 1.0
                assert sched.throttle_cap_fraction(t) == expect, (case, j, t)
        # outside the look-ahead: no cap
        assert sched.throttle_cap_fraction((k - 0.5) * HOUR_S) == 1.0
        assert sched.throttle_cap_fraction((k + 24) * HOUR_S) == 1.0
        # vectorised over instants, same answers
        ts = (k + np.arange(24) + 0.5) * HOUR_S
        np.testing.assert_array_equal(sched.throttle_cap_fraction(ts), np.where(f > thr, 0.8, 1.0))
        # 24 distinct values: the 66th percentile sits at sorted position 0.66 x 23 = 15.18, so the
        # values at positions 16..23 (8 hours) are high; a persistence forecast is flat: none is
        n_high = int((f > thr).sum())
        assert n_high == (0 if sched.params.forecast == "persistence" else 8), (case, n_high)


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="forecast"):
        SchedulerParams(forecast="oracle")
    with pytest.raises(ValueError, match="cap_fraction"):
        SchedulerParams(cap_fraction=0.0)
    with pytest.raises(ValueError, match="run_s"):
        DeferrableJob(1, 0.0, -1.0, 10.0)
    with pytest.raises(ValueError, match="outside the signal's range"):
        HourlySignal(np.ones(3)).hour_index(3 * HOUR_S)
    with pytest.raises(ValueError, match="call update"):
        CarbonScheduler(HourlySignal(np.ones(48))).should_defer(DeferrableJob(1, 0.0, 1.0, 10.0), 0.0)
