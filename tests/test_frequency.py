"""FFR activation events, FCR-D droop, the frequency signal and the synthetic trace
(twin/facility/frequency.py).

Rules: REFERENCE.md §6.1 (FFR: 49.7 / 49.6 / 49.5 Hz -> full within 1.3 / 1.0 / 0.7 s,
support 5 s or 30 s, re-arm 15 min; Svk logs 10 s before to 15 min after) and §6.2
(FCR-D up linear 49.9 -> 49.5 Hz). Piecewise-linear traces make the interpolated
crossing exact, so those checks use 1e-12 s; the synthetic-trace tolerance is derived
in its test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.facility.frequency import (
    FCR_D_TIME_TO_50_PCT_S,
    FCR_D_TIME_TO_100_PCT_S,
    NOISE_CORRELATION_S,
    NOISE_STD_HZ,
    FrequencyDip,
    FrequencySignal,
    fcr_d_up_fraction,
    ffr_activations,
    ffr_log_windows,
    merge_windows,
    synthetic_frequency_trace,
)

TOL = 1e-12


def v_dips(crossings_s, end_s, nadir_hz=49.6):
    """Piecewise-linear trace at 50 Hz with V dips that cross 49.7 Hz at the given times.

    Each dip: 50 Hz at tc - 0.75 s, straight to nadir at tc + 0.25 s (for nadir 49.6 the
    line falls 0.4 Hz per 1 s and crosses 49.7 after 0.3 / 0.4 = 0.75 s, i.e. at tc),
    back to 50 Hz at tc + 5 s.
    """
    lead = 0.3 / (50.0 - nadir_hz)  # time from 50 Hz to 49.7 Hz at 1 s per (50 - nadir) Hz
    t, f = [0.0], [50.0]
    for tc in crossings_s:
        t += [tc - lead, tc - lead + 1.0, tc + 5.0]
        f += [50.0, nadir_hz, 50.0]
    t.append(end_s)
    f.append(50.0)
    return np.array(t), np.array(f)


# ------------------------------------------------------------------ FFR events


@pytest.mark.parametrize("support_s", [5.0, 30.0])
def test_one_dip_through_49_7(support_s):
    t, f = v_dips([100.4], 300.0)
    (ev,) = ffr_activations(t, f, level_hz=49.7, support_s=support_s)
    assert ev.trigger_s == pytest.approx(100.4, abs=TOL)
    assert ev.full_activation_deadline_s == pytest.approx(100.4 + 1.3, abs=TOL)        # 101.7
    assert ev.support_end_s == pytest.approx(100.4 + 1.3 + support_s, abs=TOL)          # 106.7 / 131.7
    assert ev.log_start_s == pytest.approx(100.4 - 10.0, abs=TOL)                       # 90.4
    assert ev.rearm_s == pytest.approx(100.4 + 900.0, abs=TOL)


def test_interpolated_crossing_between_samples():
    # 50.0 Hz at 10 s, 49.6 Hz at 11 s: 49.7 is reached after (50 - 49.7) / 0.4 = 0.75 s
    (ev,) = ffr_activations([0.0, 10.0, 11.0, 20.0], [50.0, 50.0, 49.6, 50.0])
    assert ev.trigger_s == pytest.approx(10.75, abs=TOL)


@pytest.mark.parametrize(("level_hz", "activation_s"), [(49.7, 1.3), (49.6, 1.0), (49.5, 0.7)])
def test_deep_dip_deadline_per_level(level_hz, activation_s):
    # 50.0 Hz at 10 s to 49.3 Hz at 11 s: crosses L at 10 + (50 - L) / 0.7
    (ev,) = ffr_activations([0.0, 10.0, 11.0, 30.0], [50.0, 50.0, 49.3, 50.0], level_hz=level_hz, support_s=5.0)
    tc = 10.0 + (50.0 - level_hz) / 0.7  # 49.5: 10 + 0.5 / 0.7 = 10.714285...
    assert ev.trigger_s == pytest.approx(tc, abs=TOL)
    assert ev.full_activation_deadline_s == pytest.approx(tc + activation_s, abs=TOL)
    assert ev.support_end_s == pytest.approx(tc + activation_s + 5.0, abs=TOL)


def test_shallow_dip_does_not_trigger_a_deeper_level():
    t, f = v_dips([100.0], 300.0, nadir_hz=49.6)  # nadir 49.6 > 49.5
    assert ffr_activations(t, f, level_hz=49.5) == []
    assert len(ffr_activations(t, f, level_hz=49.6)) == 1  # reaching the level counts


@pytest.mark.parametrize(("second_s", "n_events"), [
    (100.0 + 600.0, 1),     # 10 min later: blind
    (100.0 + 899.9, 1),     # just before re-arm
    (100.0 + 900.001, 2),   # just after re-arm (the exact boundary is float round-off)
    (100.0 + 1200.0, 2),    # 20 min later
])
def test_rearm_after_15_min(second_s, n_events):
    t, f = v_dips([100.0, second_s], 3000.0)
    events = ffr_activations(t, f)
    assert len(events) == n_events
    assert events[0].trigger_s == pytest.approx(100.0, abs=TOL)
    if n_events == 2:
        assert events[1].trigger_s == pytest.approx(second_s, abs=1e-9)


def test_below_level_at_rearm_waits_for_a_new_crossing():
    # below 49.7 from 100 s to 1100 s (past re-arm at 1000 s), then a dip at 1200 s
    t = np.array([0.0, 99.0, 101.0, 1099.0, 1101.0, 1199.0, 1201.0, 1300.0])
    f = np.array([50.0, 50.0, 49.6, 49.6, 50.0, 50.0, 49.6, 50.0])
    assert [e.trigger_s for e in ffr_activations(t, f)] == pytest.approx([99.0 + 0.3 / 0.4 * 2.0, 1200.5], abs=TOL)


def test_trace_starting_below_level_needs_a_crossing():
    t = np.array([0.0, 5.0, 10.0, 20.0, 21.0, 30.0])
    f = np.array([49.6, 49.6, 50.0, 50.0, 49.6, 50.0])
    # first crossing from above is 20 + 0.3 / 0.4 = 20.75 s
    assert [e.trigger_s for e in ffr_activations(t, f)] == pytest.approx([20.75], abs=TOL)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"level_hz": 49.8}, "49.8.*allowed"),
    ({"support_s": 10.0}, "support_s=10.0.*allowed"),
    ({"rearm_s": -1.0}, "rearm_s"),
])
def test_ffr_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ffr_activations([0.0, 1.0], [50.0, 50.0], **kwargs)


def test_ffr_rejects_bad_traces():
    with pytest.raises(ValueError, match="strictly"):
        ffr_activations([0.0, 1.0, 1.0], [50.0, 50.0, 50.0])
    with pytest.raises(ValueError, match="non-finite"):
        ffr_activations([0.0, 1.0], [50.0, np.nan])


# ------------------------------------------------------------------ logging windows


def test_merge_windows():
    got = merge_windows([[30, 40], [0, 10], [5, 20], [40, 50], [60, 61]])
    np.testing.assert_array_equal(got, [[0, 20], [30, 50], [60, 61]])  # 40-50 touches 30-40
    assert merge_windows(np.empty((0, 2))).shape == (0, 2)
    with pytest.raises(ValueError, match="start_s <= end_s"):
        merge_windows([[5, 1]])


def test_log_windows_support_end_plus_settle():
    # 49.7 Hz, 30 s support, settle 5 s, no 15 min tail:
    # trigger 100: [90, 100 + 1.3 + 30 + 5] = [90, 136.3]; trigger 120: [110, 156.3] -> merged
    # trigger 1000: [990, 1036.3]
    got = ffr_log_windows([1000.0, 100.0, 120.0], post_s=0.0)
    np.testing.assert_allclose(got, [[90.0, 156.3], [990.0, 1036.3]], rtol=0, atol=1e-9)
    # 5 s support at 49.5 Hz: 100 + 0.7 + 5 + 5 = 110.7
    np.testing.assert_allclose(ffr_log_windows([100.0], level_hz=49.5, support_s=5.0, post_s=0.0),
                               [[90.0, 110.7]], rtol=0, atol=1e-9)


def test_log_windows_default_svk_15_min_tail():
    # Svk: 10 s before to 15 min after: [90, 1000] and [990, 1900] overlap -> [90, 1900]
    np.testing.assert_allclose(ffr_log_windows([100.0, 1000.0]), [[90.0, 1900.0]], rtol=0, atol=1e-9)
    assert ffr_log_windows([]).shape == (0, 2)


# ------------------------------------------------------------------ FCR-D


@pytest.mark.parametrize(("freq_hz", "expected"), [
    (50.0, 0.0),     # above the band
    (49.9, 0.0),     # band start
    (49.8, 0.25),    # (49.9 - 49.8) / 0.4 = 0.25
    (49.7, 0.5),     # mid-band: 0.2 / 0.4
    (49.5, 1.0),     # band end
    (49.0, 1.0),     # below: saturated
])
def test_fcr_d_up_droop(freq_hz, expected):
    assert fcr_d_up_fraction(freq_hz) == pytest.approx(expected, abs=TOL)


def test_fcr_d_vectorised_and_timing_constants():
    np.testing.assert_allclose(fcr_d_up_fraction(np.array([49.9, 49.6])), [0.0, 0.75], rtol=0, atol=TOL)
    assert (FCR_D_TIME_TO_50_PCT_S, FCR_D_TIME_TO_100_PCT_S) == (5.0, 30.0)


# ------------------------------------------------------------------ FrequencySignal


def test_signal_interpolates_and_raises_outside_with_the_range():
    sig = FrequencySignal([0.0, 10.0], [50.0, 49.0])
    assert sig.at(2.5) == pytest.approx(49.75, abs=TOL)  # 50 - 0.1 * 2.5
    np.testing.assert_allclose(sig.at([0.0, 10.0]), [50.0, 49.0])
    assert sig.covered() == (0.0, 10.0)
    with pytest.raises(ValueError, match=r"t=10\.5 s, outside the covered range 0 s to 10 s"):
        sig.at(10.5)
    with pytest.raises(ValueError, match=r"t=-1 s, outside the covered range 0 s to 10 s"):
        sig.at([5.0, -1.0])
    assert sig.fcr_d_up_fraction(5.0) == pytest.approx(1.0)  # 49.5 Hz


def test_signal_rejects_bad_input_and_is_read_only():
    with pytest.raises(ValueError, match="equal length"):
        FrequencySignal([0.0, 1.0], [50.0])
    sig = FrequencySignal([0.0, 1.0], [50.0, 50.0])
    with pytest.raises(ValueError):
        sig.freq_hz[0] = 1.0


# ------------------------------------------------------------------ synthetic trace


def test_noise_std_from_minutes_outside_band():
    # 2.5 % of minutes outside +-0.1 Hz; Phi^-1(0.9875) = 2.2414; 0.1 / 2.2414 = 0.04461 Hz
    assert NOISE_STD_HZ == pytest.approx(0.04461, abs=1e-5)


def test_synthetic_is_deterministic_per_seed():
    dips = [FrequencyDip(200.0)]
    a = synthetic_frequency_trace(600.0, seed=7, dips=dips)
    b = synthetic_frequency_trace(600.0, seed=7, dips=dips)
    c = synthetic_frequency_trace(600.0, seed=8, dips=dips)
    np.testing.assert_array_equal(a.freq_hz, b.freq_hz)
    assert not np.array_equal(a.freq_hz, c.freq_hz)
    assert a.times_s.size == 6001 and a.times_s[1] - a.times_s[0] == pytest.approx(0.1)


def test_synthetic_noise_statistics():
    # One day at 1 s, correlation 60 s: about 86400 / 120 = 720 independent values,
    # so the sample std is within a few % of sigma; 10 % is a loose bound (seeded).
    sig = synthetic_frequency_trace(86400.0, seed=3, dt_s=1.0)
    assert sig.freq_hz.std() == pytest.approx(NOISE_STD_HZ, rel=0.10)
    assert sig.freq_hz.mean() == pytest.approx(50.0, abs=0.01)
    assert ffr_activations(sig.times_s, sig.freq_hz) == []  # noise alone never reaches 49.7 Hz


@pytest.mark.parametrize(("cross_hz", "nadir_hz"), [(49.7, 49.55), (49.6, 49.45), (49.5, 49.2)])
def test_synthetic_dips_cross_at_requested_times(cross_hz, nadir_hz):
    dips = [FrequencyDip(123.456, nadir_hz=nadir_hz, cross_hz=cross_hz),
            FrequencyDip(1500.03, nadir_hz=nadir_hz, cross_hz=cross_hz, fall_s=2.0, recovery_s=90.0)]
    dt = 0.1
    sig = synthetic_frequency_trace(2400.0, seed=11, dt_s=dt, dips=dips)
    events = sig.ffr_activations(level_hz=cross_hz)
    assert len(events) == 2
    for d, ev in zip(dips, events):
        # Linear interpolation of f = 50 - D g(u), g = (1 - cos(pi u)) / 2, u = (t - start) / fall:
        # the crossing-time error is at most dt^2 max|f''| / (8 |f'(t_c)|) with
        # max|f''| = D (pi / fall)^2 / 2 and f'(t_c) = D pi / (2 fall) sin(pi u_c).
        depth = 50.0 - d.nadir_hz
        u_c = (d.t_cross_s - d.start_s) / d.fall_s
        bound = dt**2 * depth * (math.pi / d.fall_s) ** 2 / 2 / (8 * depth * math.pi / (2 * d.fall_s)
                                                                * math.sin(math.pi * u_c))
        assert abs(ev.trigger_s - d.t_cross_s) <= bound + 1e-12
        assert bound < 3e-3  # i.e. within 3 ms for these dips at 100 ms sampling
        # exact on the curve: the dip's own value at t_cross is the level
        assert 50.0 + d.deviation_hz(d.t_cross_s) == pytest.approx(cross_hz, abs=1e-12)
        # nadir reached (to sampling) and the trace is back at 50 Hz + noise later
        window = (sig.times_s >= d.start_s) & (sig.times_s <= d.end_s)
        assert sig.freq_hz[window].min() == pytest.approx(d.nadir_hz, abs=depth * (math.pi * dt / d.fall_s) ** 2)


def test_synthetic_rejects_overlapping_or_outside_dips():
    with pytest.raises(ValueError, match="overlap"):
        synthetic_frequency_trace(600.0, seed=1, dips=[FrequencyDip(100.0), FrequencyDip(150.0)])
    with pytest.raises(ValueError, match="outside the trace"):
        synthetic_frequency_trace(100.0, seed=1, dips=[FrequencyDip(95.0)])
    with pytest.raises(ValueError, match="nadir_hz < cross_hz"):
        FrequencyDip(100.0, nadir_hz=49.8, cross_hz=49.7)


@pytest.mark.parametrize("seed,dt_s", [(0, 0.1), (7, 0.1), (42, 1.0)])
def test_synthetic_noise_is_the_plain_ar1_recursion_bit_for_bit(seed, dt_s):
    # the OU noise is filtered with scipy's lfilter; it must equal the recursion
    # n_k = phi n_{k-1} + scale e_k written out (no dips: the trace is 50 Hz + noise)
    duration_s, corr_s = 3600.0, NOISE_CORRELATION_S
    sig = synthetic_frequency_trace(duration_s, seed=seed, dt_s=dt_s)
    n = round(duration_s / dt_s) + 1
    shocks = np.random.default_rng(seed).standard_normal(n)
    phi = math.exp(-dt_s / corr_s)
    scale = NOISE_STD_HZ * math.sqrt(1.0 - phi * phi)
    x = NOISE_STD_HZ * float(shocks[0])
    want = [x]
    for e in shocks[1:].tolist():
        x = phi * x + scale * e
        want.append(x)
    np.testing.assert_array_equal(sig.freq_hz, 50.0 + np.array(want))
