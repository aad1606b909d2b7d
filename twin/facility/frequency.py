"""Grid frequency: Nordic FFR activation events, FCR-D droop, a replayable frequency signal
and a seeded synthetic trace with injected dips.

Pure functions over a sampled trace ``(times_s, freq_hz)``; :class:`FrequencySignal`
is a thin time-indexed holder over them. Rules and values (REFERENCE.md §6.1, §6.2,
§6.5; Fingrid FFR and FCR pages, Svenska kraftnät FFR page), each stated where used:

* FFR (§6.1). The provider picks one activation option: 49.7 / 49.6 / 49.5 Hz ->
  full activation within 1.3 / 1.0 / 0.7 s. Minimum support 5 s (deactivation
  <= 20 %/s of capacity) or 30 s. Ready to re-activate within 15 min. Svk: 100 ms
  logs from 10 s before to 15 min after an activation.
* FCR-D upwards (§6.2): linear from 0 at 49.9 Hz to full at 49.5 Hz; legacy step
  criterion 50 % within 5 s, 100 % within 30 s.

Our modelling rules, where the sources leave a choice (``docs/models.md``):

* Trigger: the linearly interpolated time at which the trace goes from strictly above
  the level to at or below it. A trace that starts at or below the level does not
  trigger until it has been above and crosses again.
* Full-activation deadline = trigger + activation time of the level.
* Support end = deadline + support duration (support counted from full activation,
  the latest moment it may be reached).
* Re-arm: after a trigger at ``t_k`` the unit is blind until ``t_k + 900 s``; the next
  trigger is the first crossing at or after that time (a frequency still below the
  level at re-arm does not trigger until it recovers and crosses again). The TSO asks
  for readiness *within* 15 min; assuming no earlier readiness is the conservative
  reading for the number of activations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np
from scipy.signal import lfilter

__all__ = [
    "NOMINAL_HZ",
    "FFR_ACTIVATION_TIME_S",
    "FFR_SUPPORT_OPTIONS_S",
    "FFR_REARM_S",
    "FFR_LOG_PRE_S",
    "FFR_LOG_POST_S",
    "FCR_D_UP_START_HZ",
    "FCR_D_UP_FULL_HZ",
    "FCR_D_TIME_TO_50_PCT_S",
    "FCR_D_TIME_TO_100_PCT_S",
    "NOISE_STD_HZ",
    "NOISE_CORRELATION_S",
    "FfrActivation",
    "ffr_activations",
    "ffr_log_windows",
    "merge_windows",
    "fcr_d_up_fraction",
    "FrequencySignal",
    "FrequencyDip",
    "synthetic_frequency_trace",
]

NOMINAL_HZ = 50.0
#: FFR activation level [Hz] -> maximum full-activation time [s] (§6.1, Fingrid).
FFR_ACTIVATION_TIME_S = {49.7: 1.3, 49.6: 1.0, 49.5: 0.7}
#: Minimum support durations [s]: 5 s if deactivation <= 20 %/s, else 30 s (§6.1).
FFR_SUPPORT_OPTIONS_S = (5.0, 30.0)
#: Re-activation readiness after an activation [s] (§6.1: within 15 min).
FFR_REARM_S = 900.0
#: Svk 100 ms logging: from 10 s before to 15 min after an activation [s] (§6.1).
FFR_LOG_PRE_S = 10.0
FFR_LOG_POST_S = 900.0
#: FCR-D upwards band [Hz] and legacy step-response times [s] (§6.2, Fingrid).
FCR_D_UP_START_HZ = 49.9
FCR_D_UP_FULL_HZ = 49.5
FCR_D_TIME_TO_50_PCT_S = 5.0
FCR_D_TIME_TO_100_PCT_S = 30.0
#: Std of the synthetic noise [Hz], derived from §6.5: 2.5 % of 2019's minutes
#: outside 49.9-50.1 Hz; for a zero-mean Gaussian, 0.1 Hz = z * sigma with
#: z = Phi^-1(1 - 0.025/2) = 2.2414, so sigma = 0.1 / 2.2414 = 0.0446 Hz.
NOISE_STD_HZ = 0.1 / NormalDist().inv_cdf(1.0 - 0.025 / 2.0)
#: Correlation time of the synthetic noise [s]: unsourced placeholder (REFERENCE.md
#: lists Nordic frequency dynamics as a gap; fit it on Fingrid 10 Hz data).
NOISE_CORRELATION_S = 60.0


def _activation_time_s(level_hz: float) -> float:
    for level, t in FFR_ACTIVATION_TIME_S.items():
        if abs(level_hz - level) < 1e-9:
            return t
    raise ValueError(f"FFR level {level_hz!r} Hz; allowed: {sorted(FFR_ACTIVATION_TIME_S)} Hz")


def _check_support_s(support_s: float) -> float:
    if support_s not in FFR_SUPPORT_OPTIONS_S:
        raise ValueError(f"FFR support_s={support_s!r}; allowed: {FFR_SUPPORT_OPTIONS_S} s")
    return float(support_s)


def _check_trace(times_s, freq_hz) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times_s, dtype=float)
    f = np.asarray(freq_hz, dtype=float)
    if t.ndim != 1 or t.shape != f.shape or t.size < 2:
        raise ValueError(f"times_s {t.shape} and freq_hz {f.shape} must be 1-D of equal length >= 2")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(f))):
        bad = int(np.sum(~np.isfinite(t) | ~np.isfinite(f)))
        raise ValueError(f"frequency trace has {bad} non-finite samples")
    if np.any(np.diff(t) <= 0.0):
        i = int(np.argmax(np.diff(t) <= 0.0))
        raise ValueError(f"times_s must increase strictly; t[{i}]={t[i]:g} s, t[{i + 1}]={t[i + 1]:g} s")
    return t, f


@dataclass(frozen=True)
class FfrActivation:
    """One FFR activation [s on the trace's clock, Hz]."""

    level_hz: float
    trigger_s: float                    # interpolated downward crossing of level_hz
    full_activation_deadline_s: float   # trigger + 1.3 / 1.0 / 0.7 s
    support_end_s: float                # deadline + 5 or 30 s
    log_start_s: float                  # trigger - 10 s (Svk pre-trigger log)
    rearm_s: float                      # earliest next trigger: trigger + 900 s


def ffr_activations(times_s, freq_hz, *, level_hz: float = 49.7, support_s: float = 30.0,
                    rearm_s: float = FFR_REARM_S) -> list[FfrActivation]:
    """FFR activation events of one unit on a sampled frequency trace.

    Parameters
    ----------
    times_s : array
        Sample times, strictly increasing [s].
    freq_hz : array
        Frequency at those times [Hz]; linear between samples.
    level_hz : {49.7, 49.6, 49.5}
        The unit's activation option [Hz].
    support_s : {5.0, 30.0}
        Minimum support duration of the unit [s].
    rearm_s : float
        Blind time after a trigger [s] (default 900 s, the 15 min of §6.1).

    Returns
    -------
    list of FfrActivation
        In time order; rules in the module docstring.
    """
    t, f = _check_trace(times_s, freq_hz)
    t_act = _activation_time_s(level_hz)
    support = _check_support_s(support_s)
    if not rearm_s >= 0.0:
        raise ValueError(f"rearm_s={rearm_s!r}; allowed: >= 0 s")
    i = np.flatnonzero((f[:-1] > level_hz) & (f[1:] <= level_hz))
    crossings = t[i] + (f[i] - level_hz) / (f[i] - f[i + 1]) * (t[i + 1] - t[i])
    events: list[FfrActivation] = []
    armed_from = -math.inf
    for tc in crossings:
        if tc < armed_from:
            continue
        tc = float(tc)
        deadline = tc + t_act
        events.append(FfrActivation(level_hz=float(level_hz), trigger_s=tc, full_activation_deadline_s=deadline,
                                    support_end_s=deadline + support, log_start_s=tc - FFR_LOG_PRE_S,
                                    rearm_s=tc + rearm_s))
        armed_from = tc + rearm_s
    return events


def merge_windows(windows) -> np.ndarray:
    """Union of closed intervals, sorted, overlapping or touching ones merged.

    Parameters
    ----------
    windows : array of shape (n, 2)
        ``[start_s, end_s]`` rows, ``start <= end``.

    Returns
    -------
    ndarray of shape (m, 2), m <= n
    """
    w = np.asarray(windows, dtype=float).reshape(-1, 2)
    if np.any(w[:, 1] < w[:, 0]):
        raise ValueError("every window needs start_s <= end_s")
    if w.shape[0] == 0:
        return w
    w = w[np.argsort(w[:, 0], kind="stable")]
    out = [list(w[0])]
    for start, end in w[1:]:
        if start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return np.array(out)


def ffr_log_windows(trigger_s: Sequence[float], *, level_hz: float = 49.7, support_s: float = 30.0,
                    pre_s: float = FFR_LOG_PRE_S, settle_s: float = 5.0,
                    post_s: float = FFR_LOG_POST_S) -> np.ndarray:
    """Time windows the engine must log at 100 ms around FFR triggers [s].

    Each trigger ``t`` needs ``[t - pre_s, max(support_end + settle_s, t + post_s)]``
    with ``support_end = t + activation_time(level_hz) + support_s``; overlapping or
    touching windows are merged.

    Parameters
    ----------
    trigger_s : array
        Trigger times [s].
    level_hz, support_s
        As in :func:`ffr_activations`.
    pre_s : float
        Log before the trigger [s] (Svk: 10 s).
    settle_s : float
        Margin after support end [s]; default 5 s = a full ramp-down at 20 %/s.
    post_s : float
        Log after the trigger [s] (Svk: 15 min = 900 s). ``post_s=0`` leaves only
        support end + settle.

    Returns
    -------
    ndarray of shape (m, 2)
        ``[start_s, end_s]`` rows, sorted and disjoint.
    """
    trig = np.asarray(trigger_s, dtype=float).reshape(-1)
    if not np.all(np.isfinite(trig)):
        raise ValueError("trigger times must be finite")
    for name, v in (("pre_s", pre_s), ("settle_s", settle_s), ("post_s", post_s)):
        if not v >= 0.0:
            raise ValueError(f"{name}={v!r}; allowed: >= 0 s")
    support_end = trig + _activation_time_s(level_hz) + _check_support_s(support_s)
    end = np.maximum(support_end + settle_s, trig + post_s)
    return merge_windows(np.column_stack([trig - pre_s, end]))


def fcr_d_up_fraction(freq_hz):
    """Activated share of FCR-D upwards capacity at a frequency (static droop) [-].

    ``clip((49.9 - f) / (49.9 - 49.5), 0, 1)``: 0 at and above 49.9 Hz, 1 at and below
    49.5 Hz, linear between (REFERENCE.md §6.2, Fingrid). The dynamics (50 % within
    :data:`FCR_D_TIME_TO_50_PCT_S`, 100 % within :data:`FCR_D_TIME_TO_100_PCT_S` after
    a 49.9 -> 49.5 Hz step) are not applied here.

    Parameters
    ----------
    freq_hz : float or array
        Grid frequency [Hz].

    Returns
    -------
    float or array in [0, 1]
    """
    x = np.clip((FCR_D_UP_START_HZ - np.asarray(freq_hz, dtype=float)) / (FCR_D_UP_START_HZ - FCR_D_UP_FULL_HZ),
                0.0, 1.0)
    return x if x.ndim else float(x)


class FrequencySignal:
    """A sampled frequency trace, linear between samples, defined only where sampled.

    Parameters
    ----------
    times_s : array
        Strictly increasing sample times [s].
    freq_hz : array
        Frequency [Hz].

    Asking outside ``[times_s[0], times_s[-1]]`` raises ``ValueError`` with the
    covered range.
    """

    def __init__(self, times_s, freq_hz):
        t, f = _check_trace(times_s, freq_hz)
        t.setflags(write=False)
        f.setflags(write=False)
        self.times_s = t
        self.freq_hz = f

    def covered(self) -> tuple[float, float]:
        """First and last sample time [s]."""
        return float(self.times_s[0]), float(self.times_s[-1])

    def at(self, t_s):
        """Frequency at time(s) ``t_s`` [Hz], linear between samples."""
        q = np.asarray(t_s, dtype=float)
        lo, hi = self.covered()
        outside = ~((q >= lo) & (q <= hi))
        if np.any(outside):
            first = float(q.reshape(-1)[np.argmax(outside.reshape(-1))])
            raise ValueError(f"frequency asked for t={first:g} s, outside the covered range {lo:g} s to {hi:g} s")
        if q.ndim == 0:
            # scalar fast path: a binary search, no pass over (or copy of) the whole trace
            t, f = self.times_s, self.freq_hz
            i = min(max(int(np.searchsorted(t, float(q), side="right")) - 1, 0), t.size - 2) if t.size > 1 else 0
            if t.size == 1:
                return float(f[0])
            w = (float(q) - t[i]) / (t[i + 1] - t[i])
            return float(f[i] + w * (f[i + 1] - f[i]))
        return np.interp(q, self.times_s, self.freq_hz)

    def ffr_activations(self, **kwargs) -> list[FfrActivation]:
        """:func:`ffr_activations` on this trace."""
        return ffr_activations(self.times_s, self.freq_hz, **kwargs)

    def fcr_d_up_fraction(self, t_s):
        """:func:`fcr_d_up_fraction` of the frequency at ``t_s`` [-]."""
        return fcr_d_up_fraction(self.at(t_s))


@dataclass(frozen=True)
class FrequencyDip:
    """A frequency dip after a generation loss, crossing ``cross_hz`` at ``t_cross_s``.

    Shape (deviation from 50 Hz, ``g(u) = (1 - cos(pi u)) / 2``): a fall of
    ``fall_s`` from 50 Hz to ``nadir_hz``, then a recovery of ``recovery_s`` back to
    50 Hz, both along ``g``. The start is placed so that the fall passes ``cross_hz``
    exactly at ``t_cross_s``. Defaults for fall and recovery are illustrative, not
    sourced.
    """

    t_cross_s: float
    nadir_hz: float = 49.5
    cross_hz: float = 49.7
    fall_s: float = 3.0
    recovery_s: float = 60.0

    def __post_init__(self):
        if not (self.nadir_hz < self.cross_hz < NOMINAL_HZ):
            raise ValueError(f"dip needs nadir_hz < cross_hz < {NOMINAL_HZ} Hz; "
                             f"got nadir {self.nadir_hz!r}, cross {self.cross_hz!r}")
        if not (self.fall_s > 0.0 and self.recovery_s > 0.0):
            raise ValueError(f"dip fall_s={self.fall_s!r} and recovery_s={self.recovery_s!r}; allowed: > 0 s")

    @property
    def start_s(self) -> float:
        """Time the fall leaves 50 Hz [s]."""
        g_cross = (NOMINAL_HZ - self.cross_hz) / (NOMINAL_HZ - self.nadir_hz)
        return self.t_cross_s - math.acos(1.0 - 2.0 * g_cross) / math.pi * self.fall_s

    @property
    def nadir_s(self) -> float:
        """Time of the nadir [s]."""
        return self.start_s + self.fall_s

    @property
    def end_s(self) -> float:
        """Time the recovery reaches 50 Hz [s]."""
        return self.nadir_s + self.recovery_s

    def deviation_hz(self, t_s):
        """Frequency minus 50 Hz along the dip (0 outside it) [Hz]."""
        t = np.asarray(t_s, dtype=float)
        depth = NOMINAL_HZ - self.nadir_hz
        u_fall = np.clip((t - self.start_s) / self.fall_s, 0.0, 1.0)
        u_rec = np.clip((t - self.nadir_s) / self.recovery_s, 0.0, 1.0)
        g = np.where(t <= self.nadir_s, (1.0 - np.cos(np.pi * u_fall)) / 2.0, (1.0 + np.cos(np.pi * u_rec)) / 2.0)
        return -depth * g


def synthetic_frequency_trace(duration_s: float, *, seed: int, dt_s: float = 0.1,
                              dips: Sequence[FrequencyDip] = (), noise_std_hz: float = NOISE_STD_HZ,
                              correlation_s: float = NOISE_CORRELATION_S, taper_s: float = 10.0,
                              start_s: float = 0.0) -> FrequencySignal:
    """Seeded synthetic grid frequency: 50 Hz + AR(1) noise + deterministic dips.

    The noise is a sampled Ornstein-Uhlenbeck process: ``n_k = phi n_{k-1} +
    sigma sqrt(1 - phi^2) e_k`` with ``phi = exp(-dt / correlation_s)``, stationary std
    ``noise_std_hz`` (default 0.0446 Hz from §6.5), ``n_0`` drawn from the stationary
    law. Around each dip the noise is faded out with a raised-cosine taper over
    ``taper_s`` before its start and after its end, so within the dip the frequency is
    exactly ``50 + dip.deviation_hz(t)`` and it crosses ``dip.cross_hz`` at
    ``dip.t_cross_s`` (to the sampling of ``dt_s``).

    Parameters
    ----------
    duration_s : float
        Length [s]; samples at ``start_s + k dt_s`` for ``k = 0 .. round(duration/dt)``.
    seed : int
        Seed of ``numpy.random.default_rng``; same arguments, same trace.
    dt_s : float
        Sample interval [s].
    dips : sequence of FrequencyDip
        Dips inside the trace, their tapered spans not overlapping.
    noise_std_hz, correlation_s : float
        Noise std [Hz] and correlation time [s].
    taper_s : float
        Fade of the noise around each dip [s].
    start_s : float
        Time of the first sample [s].

    Returns
    -------
    FrequencySignal
    """
    if not (duration_s > 0.0 and dt_s > 0.0 and correlation_s > 0.0 and noise_std_hz >= 0.0 and taper_s >= 0.0):
        raise ValueError(f"need duration_s > 0, dt_s > 0, correlation_s > 0, noise_std_hz >= 0, taper_s >= 0; got "
                         f"{duration_s!r}, {dt_s!r}, {correlation_s!r}, {noise_std_hz!r}, {taper_s!r}")
    n = int(round(duration_s / dt_s)) + 1
    t = start_s + dt_s * np.arange(n)
    spans = sorted((d.start_s - taper_s, d.end_s + taper_s, d) for d in dips)
    for lo, hi, d in spans:
        if lo < t[0] or hi > t[-1]:
            raise ValueError(f"dip at t_cross_s={d.t_cross_s:g} s spans {lo:g} s to {hi:g} s with its taper, "
                             f"outside the trace {t[0]:g} s to {t[-1]:g} s")
    for (_, hi0, d0), (lo1, _, d1) in zip(spans, spans[1:]):
        if lo1 < hi0:
            raise ValueError(f"dips at t_cross_s={d0.t_cross_s:g} s and {d1.t_cross_s:g} s overlap (with taper)")

    rng = np.random.default_rng(seed)
    phi = math.exp(-dt_s / correlation_s)
    shocks = rng.standard_normal(n)
    scale = noise_std_hz * math.sqrt(1.0 - phi * phi)
    noise = np.empty(n)
    noise[0] = noise_std_hz * float(shocks[0])
    # n_k = phi n_{k-1} + scale e_k as a first-order IIR filter: lfilter forms scale e_k +
    # phi n_{k-1} (the same two products; IEEE addition commutes), so the numbers are those
    # of the plain loop (tests/test_frequency.py checks it), ~20x faster at 864 001 samples
    noise[1:] = lfilter([scale], [1.0, -phi], shocks[1:], zi=[phi * noise[0]])[0]

    weight = np.ones(n)   # weight of the noise
    deviation = np.zeros(n)
    for lo, hi, d in spans:
        # outside (lo, hi) the fade is exactly 1 and the deviation exactly 0: work on the span only
        a, b = int(np.searchsorted(t, lo, side="left")), int(np.searchsorted(t, hi, side="right"))
        ts = t[a:b]
        if taper_s > 0.0:
            before = np.clip((d.start_s - ts) / taper_s, 0.0, 1.0)
            after = np.clip((ts - d.end_s) / taper_s, 0.0, 1.0)
            fade = (1.0 - np.cos(np.pi * np.maximum(before, after))) / 2.0
        else:
            fade = np.where((ts >= d.start_s) & (ts <= d.end_s), 0.0, 1.0)
        weight[a:b] = np.minimum(weight[a:b], fade)
        deviation[a:b] += d.deviation_hz(ts)
    return FrequencySignal(t, NOMINAL_HZ + weight * noise + deviation)
