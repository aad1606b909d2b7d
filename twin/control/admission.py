"""Admission of announced workloads: DCPI §6.1.2 announcements, §6.1.3 tri-state answers.

A workload announces itself (DCPI Annex A.1 and §6.1.2 a-e: identity and type, power
profile, flexibility, timing and priority; :class:`WorkloadAnnouncement`); the facility
answers from its state (:class:`FacilityState`: power headroom per time step, headroom
per circuit, carbon-intensity forecast) with one of (§6.1.3, Annex A.2
``approval_status``):

* ``approved``: the peak power fits, on one circuit and within the facility headroom,
  for *every* start in the announced window ``[earliest_start_s, latest_start_s]``;
* ``approved_with_conditions``: it fits only with conditions, tried in this order
  (chosen: a later start costs the workload nothing it did not offer, a throttle costs
  it speed): (1) full power with a narrower start window (the first contiguous run of
  feasible starts), (2) a power limit ``throttle_fraction x peak`` (not below the
  announced ``min_throttle_fraction``; duration stretched to ``duration / fraction``,
  assuming work proportional to power, which is conservative for GPUs whose throughput
  falls less than their power) at the earliest start where one fits, keeping any
  deadline;
* ``rejected``: nothing fits in the window; the answer carries an alternative start
  window (from the first later start at full power within the headroom horizon, the
  contiguous run of feasible starts, at most as wide as the announced window) or None
  with the reason.

Feasibility at start ``s``: ``peak <= min(headroom over the steps overlapping
[s, s + d)) `` and ``peak <= circuit headroom``. Starts are tried at the window's ends
and at every step boundary between them; because a start between two step boundaries
overlaps only steps that one of its two neighbours overlaps, two feasible neighbouring
starts make every start between them feasible. The answer also carries the
lowest-carbon start of its start window (§6.1.3 d) when a CI forecast is given.
``priority`` is validated and carried but does not change the answer in this version.

Units are SI inside (W, s); Annex A.1's ``peak_power_mw``/``baseline_power_mw``/
``duration_estimate_sec`` map onto ``peak_power_w``/``baseline_power_w``/``duration_s``.
Nothing reads a clock: times are seconds on the caller's clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

__all__ = [
    "PRIORITIES",
    "STATUSES",
    "WORKLOAD_TYPES",
    "AdmissionDecision",
    "FacilityState",
    "WorkloadAnnouncement",
    "decide_admission",
    "window_headroom_w",
]

#: DCPI §6.1.2 a: "AI training, inference serving, traditional compute, HPC applications".
WORKLOAD_TYPES = ("ai_training", "inference_serving", "traditional_compute", "hpc_application")
#: DCPI §6.1.2 e "business criticality classification"; the levels are ours (chosen).
PRIORITIES = ("critical", "high", "normal", "low")
#: DCPI §6.1.3 and Annex A.2 ``approval_status``.
STATUSES = ("approved", "approved_with_conditions", "rejected")

_FIX_ITER = 50  # throttle fixed-point iterations (converges in a few; chosen bound)


def _finite(name: str, v, ok: bool, expected: str) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) or not ok:
        raise ValueError(f"{name} = {v!r}: expected {expected}")


@dataclass(frozen=True)
class WorkloadAnnouncement:
    """A workload announcement (DCPI Annex A.1 + §6.1.2 a-e), SI units.

    Attributes
    ----------
    workload_id : str
        Annex A.1 ``workload_id``, non-empty.
    workload_type : str
        §6.1.2 a, one of :data:`WORKLOAD_TYPES`.
    peak_power_w, baseline_power_w : float
        §6.1.2 b / A.1 ``peak_power_mw``, ``baseline_power_mw`` [W]; 0 <= baseline <= peak, peak > 0.
    duration_s : float
        A.1 ``duration_estimate_sec`` [s], > 0.
    earliest_start_s, latest_start_s : float
        §6.1.2 e start window [s], earliest <= latest.
    average_power_w : float or None
        §6.1.2 b [W], in [baseline, peak] if given.
    ramp_rate_w_per_s : float or None
        A.1 ``ramp_rate_mw_per_sec`` [W/s], > 0 if given.
    deadline_s : float or None
        §6.1.2 e: must have finished by then [s]; >= latest_start_s + duration_s.
    min_throttle_fraction : float
        §6.1.2 d throttling capability / minimum performance threshold: lowest power
        fraction of peak it accepts [-], in (0, 1]; 1 = not throttleable.
    pausable : bool
        §6.1.2 d pause/resume support (carried; not used for admission).
    priority : str
        §6.1.2 e, one of :data:`PRIORITIES`.
    circuit_id : str or None
        Circuit the workload must run on; None lets the facility assign one.
    """

    workload_id: str
    workload_type: str
    peak_power_w: float
    baseline_power_w: float
    duration_s: float
    earliest_start_s: float
    latest_start_s: float
    average_power_w: float | None = None
    ramp_rate_w_per_s: float | None = None
    deadline_s: float | None = None
    min_throttle_fraction: float = 1.0
    pausable: bool = False
    priority: str = "normal"
    circuit_id: str | None = None

    def __post_init__(self):
        if not isinstance(self.workload_id, str) or not self.workload_id:
            raise ValueError(f"workload_id = {self.workload_id!r}: expected a non-empty string")
        if self.workload_type not in WORKLOAD_TYPES:
            raise ValueError(f"workload_type = {self.workload_type!r}: expected one of {WORKLOAD_TYPES}")
        _finite("peak_power_w", self.peak_power_w, self.peak_power_w > 0, "a finite power > 0 W")
        _finite("baseline_power_w", self.baseline_power_w, 0 <= self.baseline_power_w <= self.peak_power_w,
                f"a finite power in [0, peak_power_w = {self.peak_power_w!r}] W")
        _finite("duration_s", self.duration_s, self.duration_s > 0, "a finite duration > 0 s")
        _finite("earliest_start_s", self.earliest_start_s, True, "a finite time [s]")
        _finite("latest_start_s", self.latest_start_s, self.latest_start_s >= self.earliest_start_s,
                f"a finite time >= earliest_start_s = {self.earliest_start_s!r} s")
        if self.average_power_w is not None:
            _finite("average_power_w", self.average_power_w,
                    self.baseline_power_w <= self.average_power_w <= self.peak_power_w,
                    "a finite power in [baseline_power_w, peak_power_w] W")
        if self.ramp_rate_w_per_s is not None:
            _finite("ramp_rate_w_per_s", self.ramp_rate_w_per_s, self.ramp_rate_w_per_s > 0, "a finite rate > 0 W/s")
        if self.deadline_s is not None:
            _finite("deadline_s", self.deadline_s, self.deadline_s >= self.latest_start_s + self.duration_s,
                    f"a finite time >= latest_start_s + duration_s = {self.latest_start_s + self.duration_s!r} s")
        _finite("min_throttle_fraction", self.min_throttle_fraction, 0 < self.min_throttle_fraction <= 1,
                "a fraction in (0, 1]")
        if not isinstance(self.pausable, bool):
            raise ValueError(f"pausable = {self.pausable!r}: expected True or False")
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority = {self.priority!r}: expected one of {PRIORITIES}")
        if self.circuit_id is not None and (not isinstance(self.circuit_id, str) or not self.circuit_id):
            raise ValueError(f"circuit_id = {self.circuit_id!r}: expected a non-empty string or None")


@dataclass(frozen=True)
class FacilityState:
    """What the facility knows when it answers (§6.1.3 b, d).

    Attributes
    ----------
    start_s : float
        Start of the first headroom step [s].
    step_s : float
        Length of each step [s], > 0 (e.g. 900 or 3600).
    headroom_w : 1-D array
        Facility power available to new workloads in each step [W], >= 0 (capacity
        minus committed load and reserve), IT-side.
    circuit_headroom_w : mapping str -> float
        Spare capacity per power circuit [W], >= 0 (placeholder for a circuit model:
        one number per circuit, constant over the horizon), at least one circuit.
    ci_forecast_g_per_kwh : 1-D array or None
        Carbon-intensity forecast on the same steps [gCO2eq/kWh], >= 0.
    """

    start_s: float
    step_s: float
    headroom_w: np.ndarray
    circuit_headroom_w: Mapping[str, float] = field(default_factory=dict)
    ci_forecast_g_per_kwh: np.ndarray | None = None

    def __post_init__(self):
        _finite("start_s", self.start_s, True, "a finite time [s]")
        _finite("step_s", self.step_s, self.step_s > 0, "a finite step > 0 s")
        h = np.asarray(self.headroom_w, dtype=float)
        if h.ndim != 1 or h.size == 0 or not np.all(np.isfinite(h)) or np.any(h < 0):
            raise ValueError(f"headroom_w: expected a non-empty 1-D array of finite powers >= 0 W; got {h!r}")
        object.__setattr__(self, "headroom_w", h)
        if not self.circuit_headroom_w:
            raise ValueError("circuit_headroom_w: expected at least one circuit {name: headroom_w}")
        for k, v in self.circuit_headroom_w.items():
            if not isinstance(k, str) or not k:
                raise ValueError(f"circuit_headroom_w key {k!r}: expected a non-empty string")
            _finite(f"circuit_headroom_w[{k!r}]", v, v >= 0, "a finite power >= 0 W")
        object.__setattr__(self, "circuit_headroom_w", MappingProxyType(dict(self.circuit_headroom_w)))
        if self.ci_forecast_g_per_kwh is not None:
            c = np.asarray(self.ci_forecast_g_per_kwh, dtype=float)
            if c.shape != h.shape or not np.all(np.isfinite(c)) or np.any(c < 0):
                raise ValueError(f"ci_forecast_g_per_kwh: expected {h.size} finite intensities >= 0 g/kWh "
                                 f"(one per headroom step); got shape {c.shape}")
            object.__setattr__(self, "ci_forecast_g_per_kwh", c)

    @property
    def end_s(self) -> float:
        return self.start_s + self.headroom_w.size * self.step_s


@dataclass(frozen=True)
class AdmissionDecision:
    """The facility's answer (DCPI §6.1.3, Annex A.2).

    ``approved_power_w``, ``start_window_s``, ``throttle_fraction``, ``duration_s`` and
    ``circuit_id`` are the conditions (None when rejected); ``throttle_fraction`` is 1
    unless throttled. ``alternative_start_window_s`` is set only when rejected.
    """

    workload_id: str
    status: str
    approved_power_w: float | None = None
    start_window_s: tuple[float, float] | None = None
    throttle_fraction: float | None = None
    duration_s: float | None = None
    circuit_id: str | None = None
    alternative_start_window_s: tuple[float, float] | None = None
    recommended_start_s: float | None = None
    ci_mean_g_per_kwh: float | None = None
    reasons: tuple[str, ...] = ()

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status = {self.status!r}: expected one of {STATUSES}")

    @property
    def conditions(self) -> dict:
        """The conditions as a plain dict (empty unless approved with conditions)."""
        if self.status != "approved_with_conditions":
            return {}
        return {"power_limit_w": self.approved_power_w, "start_window_s": self.start_window_s,
                "throttle_fraction": self.throttle_fraction, "duration_s": self.duration_s}


def window_headroom_w(state: FacilityState, start_s: float, duration_s: float) -> float:
    """Least facility headroom over the steps that ``[start_s, start_s + duration_s)`` overlaps [W].

    Raises ValueError naming the covered range if the interval leaves the horizon.
    """
    end = start_s + duration_s
    if start_s < state.start_s or end > state.end_s + 1e-9:
        raise ValueError(f"[{start_s:g}, {end:g}) s lies outside the headroom horizon "
                         f"[{state.start_s:g}, {state.end_s:g}) s")
    i0 = math.floor((start_s - state.start_s) / state.step_s + 1e-9)
    i1 = math.ceil((end - state.start_s) / state.step_s - 1e-9)
    return float(state.headroom_w[i0:max(i1, i0 + 1)].min())


def _candidate_starts(state: FacilityState, first_s: float, last_s: float) -> np.ndarray:
    """``first_s``, every step boundary strictly between, ``last_s`` (sorted, unique)."""
    k0 = math.floor((first_s - state.start_s) / state.step_s) + 1
    k1 = math.ceil((last_s - state.start_s) / state.step_s) - 1
    grid = state.start_s + state.step_s * np.arange(k0, k1 + 1) if k1 >= k0 else np.zeros(0)
    return np.unique(np.r_[first_s, grid[(grid > first_s) & (grid < last_s)], last_s])


def _ci_mean(state: FacilityState, start_s: float, duration_s: float) -> float | None:
    """Time-weighted mean CI forecast over ``[start_s, start_s + duration_s)`` [g/kWh]."""
    c = state.ci_forecast_g_per_kwh
    if c is None:
        return None
    edges = state.start_s + state.step_s * np.arange(c.size + 1)
    overlap = np.clip(np.minimum(edges[1:], start_s + duration_s) - np.maximum(edges[:-1], start_s), 0.0, None)
    return float(overlap @ c / overlap.sum())


def decide_admission(announcement: WorkloadAnnouncement, state: FacilityState) -> AdmissionDecision:
    """Answer one announcement (rules in the module docstring).

    Parameters
    ----------
    announcement : WorkloadAnnouncement
    state : FacilityState
        Its headroom horizon must cover the announced window plus the duration.

    Returns
    -------
    AdmissionDecision
    """
    a = announcement
    if not isinstance(a, WorkloadAnnouncement):
        raise TypeError(f"announcement: expected a WorkloadAnnouncement, got {type(a).__name__}")
    if not isinstance(state, FacilityState):
        raise TypeError(f"state: expected a FacilityState, got {type(state).__name__}")
    if a.circuit_id is not None:
        if a.circuit_id not in state.circuit_headroom_w:
            raise ValueError(f"circuit_id = {a.circuit_id!r}: expected one of {sorted(state.circuit_headroom_w)}")
        circuit = a.circuit_id
    else:  # assign the circuit with the most spare capacity (ties: first name in sorted order)
        circuit = max(sorted(state.circuit_headroom_w), key=lambda k: state.circuit_headroom_w[k])
    circuit_w = float(state.circuit_headroom_w[circuit])
    window_headroom_w(state, a.latest_start_s, a.duration_s)  # the horizon must cover the window: raises if not
    peak, d = a.peak_power_w, a.duration_s
    starts = _candidate_starts(state, a.earliest_start_s, a.latest_start_s)
    avail = np.array([min(window_headroom_w(state, s, d), circuit_w) for s in starts])
    ok = avail >= peak

    def answer(status, power_w, window, frac, dur, reasons):
        rec, ci = None, None
        if state.ci_forecast_g_per_kwh is not None:
            cands = [s for s in starts if window[0] <= s <= window[1]] or [window[0]]
            cis = [_ci_mean(state, s, dur) for s in cands]
            i = int(np.argmin(cis))
            rec, ci = float(cands[i]), cis[i]
        return AdmissionDecision(a.workload_id, status, float(power_w), (float(window[0]), float(window[1])),
                                 float(frac), float(dur), circuit, None, rec, ci, tuple(reasons))

    if ok.all():
        return answer("approved", peak, (a.earliest_start_s, a.latest_start_s), 1.0, d, ())
    if ok.any():  # (1) full power, narrower start window: the first contiguous feasible run
        i = int(np.argmax(ok))
        j = i
        while j + 1 < ok.size and ok[j + 1]:
            j += 1
        return answer("approved_with_conditions", peak, (starts[i], starts[j]), 1.0, d,
                      (f"peak {peak:g} W fits only for starts in [{starts[i]:g}, {starts[j]:g}] s",))
    # (2) throttled: the earliest start where some fraction >= min_throttle_fraction fits
    for s in starts:
        frac = min(1.0, min(window_headroom_w(state, s, d), circuit_w) / peak)
        for _ in range(_FIX_ITER):  # stretch the duration to d / frac until the headroom holds
            if frac < a.min_throttle_fraction or s + d / frac > state.end_s + 1e-9:
                break
            need = min(window_headroom_w(state, s, d / frac), circuit_w) / peak
            if need >= frac - 1e-12:
                break
            frac = need
        if frac < a.min_throttle_fraction or s + d / frac > state.end_s + 1e-9:
            continue
        if a.deadline_s is not None and s + d / frac > a.deadline_s + 1e-9:
            continue
        return answer("approved_with_conditions", frac * peak, (s, s), frac, d / frac,
                      ((f"peak {peak:g} W does not fit in the start window; throttled to {frac:.4g} of peak "
                        f"(limit {frac * peak:g} W, min accepted {a.min_throttle_fraction:g}) from {s:g} s"),))
    # rejected: the first later start at full power within the horizon
    reasons = [(f"peak {peak:g} W exceeds the headroom (at most {avail.max():g} W on circuit {circuit!r}) for "
                f"every start in [{a.earliest_start_s:g}, {a.latest_start_s:g}] s, even at the minimum throttle "
                f"{a.min_throttle_fraction:g}")]
    alt = None
    if circuit_w >= peak and a.latest_start_s + d < state.end_s:
        later = _candidate_starts(state, a.latest_start_s, state.end_s - d)[1:]
        fits = np.array([window_headroom_w(state, s, d) >= peak for s in later])
        if fits.any():  # first feasible start, then the contiguous feasible run, at most the announced width
            i = j = int(np.argmax(fits))
            width = a.latest_start_s - a.earliest_start_s
            while j + 1 < fits.size and fits[j + 1] and later[j + 1] <= later[i] + width:
                j += 1
            alt = (float(later[i]), float(later[j]))
    if alt is None:
        reasons.append("no start at full power within the headroom horizon "
                       f"(ends {state.end_s:g} s)" + ("" if circuit_w >= peak else
                                                     f"; circuit {circuit!r} has only {circuit_w:g} W"))
    return AdmissionDecision(a.workload_id, "rejected", alternative_start_window_s=alt, circuit_id=None,
                             reasons=tuple(reasons))
