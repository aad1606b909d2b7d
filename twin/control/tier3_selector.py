"""Tier 3 of the GridPilot cascade: the hourly cluster operating-point selector.

Once an hour the selector grid-searches the 2-D space of the mean operating fraction
``u`` (IT power as a fraction of the cluster's maximum IT power ``P_max``) and the FR
reserve band ``r`` (the IT-side reduction, same fraction, that the safety island applies
on a grid trigger) and keeps the best score (seed 004 §3.1, Eq. 3, whose body is lost in
our copy; the terms are the ones its prose names: CFE share, FR-provision quality *at the
facility meter*, carbon). The facility meter is seen through an injected facility-power
model ``F: it_power_w -> facility_power_w`` (e.g. the paper's Eq. 4,
:func:`twin.physics.cooling.facility_power_w` with the site's coefficients bound); the
CI-only variant of §4 (E8) uses ``F(p) = p``. Every formula is in ``docs/metrics.md``
(§1, §6) and every constant in ``docs/parameters.md``. For one hour with carbon
intensity ``CI``, carbon-free fraction ``cff`` and a meter-side FFR commitment ``R``:

``e(u)      = (F(u P_max) - F(0)) / P_max``                    facility energy the flexible load adds [-]
``D(u, r)   = F(u P_max) - F((u - r) P_max)``                  reserve seen at the meter [W]
``Q(u, r)   = min(1, D / R)`` (1 when ``R = 0``)               FR-provision quality [-]
``J(u, r)   = w_cfe cff e(u) - w_co2 (CI / CI_ref) e(u) + w_fr Q(u, r) + w_work u``

over the feasible candidates ``u - r >= trigger_floor_fraction``. ``cff e(u)`` is the
hour's share of the CFE numerator (carbon-free facility energy) and ``(CI / CI_ref)
e(u)`` its facility CO2, both per unit of the flexible load's full IT energy, so that the
two variants price a watt of IT alike except for the facility's marginal factor
(``e(u) = u`` for CI-only, ``m̄ u`` for Eq. 4; normalising by ``F(P_max)`` instead would
price the PUE-aware variant's carbon in smaller units and make it curtail less, not
more, where the meter sees more); ``w_work u`` is the
value of the work done (without it no term favours running at all). Ties (within
1e-12) go to the smallest ``r`` (least curtailment when triggered), then the largest
``u``. A PUE-aware selector sizes ``r`` so that the *meter* sees ``R``; a CI-only one
sizes it on IT power, and with Eq. 4 (marginal factor ``dF/dP_IT >= 1``) over-delivers,
or, if its commitment is made as ``ΔP_IT x PUE``, under-delivers (``docs/metrics.md`` §1).

:class:`Tier3Selector` is the thin stateful wrapper: it keeps the parameters, the last
decision and a decision counter, and maps ``(u, r)`` to the safety-island table
(:mod:`twin.control.island_table`): trigger rows hold ``clip((u - r) P_max)``, the
release row ``clip(u P_max)``, per cohort. It reads no clock: times are passed in.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from twin.control.island_table import encode_table

__all__ = [
    "ScoreTable",
    "Tier3Choice",
    "Tier3Decision",
    "Tier3Params",
    "Tier3Selector",
    "fr_quality",
    "island_caps_w",
    "meter_reserve_w",
    "operating_grid",
    "score_grid",
    "select_operating_point",
]

#: Relative tolerance under which two objective values count as a tie (chosen: far
#: below any physically meaningful difference, far above float64 rounding of sums of
#: four O(1) terms).
TIE_RTOL = 1e-12

FacilityPowerFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Tier3Params:
    """Weights and search grid of the Tier-3 selector (values: ``docs/parameters.md``).

    Attributes
    ----------
    w_cfe, w_fr, w_co2, w_work : float
        Weights (>= 0) of the carbon-free energy, FR quality, carbon and work terms [-].
    u_min : float
        Lowest operating fraction searched [-], in [0, 1).
    u_step : float
        Step of the ``u`` grid [-]; ``(1 - u_min) / u_step`` must be a whole number.
    r_max : float
        Largest reserve band searched [-], in [0, 1].
    r_step : float
        Step of the ``r`` grid [-]; ``r_max / r_step`` must be a whole number (or r_max 0).
    trigger_floor_fraction : float
        Lowest IT power fraction a trigger may cut to [-], in [0, 1]; candidates with
        ``u - r`` below it are infeasible. Set it to the share of IT power caps cannot
        shed (e.g. GPU min limit / max limit x GPU share of IT power).
    trigger_levels_hz : tuple of float
        Island trigger levels [Hz], strictly decreasing (Nordic FFR options).
    release_level_hz : float or None
        Level of the island's release row [Hz] (above the highest trigger), or None.
    table_validity_s : float
        How long a written island table stays valid [s], > 0 (``expires_s - created_s``).
    """

    w_cfe: float = 1.0
    w_fr: float = 1.0
    w_co2: float = 1.0
    w_work: float = 1.0
    u_min: float = 0.4
    u_step: float = 0.05
    r_max: float = 0.4
    r_step: float = 0.01
    trigger_floor_fraction: float = 0.0
    trigger_levels_hz: tuple[float, ...] = (49.7, 49.6, 49.5)
    release_level_hz: float | None = 49.9
    table_validity_s: float = 7200.0

    def __post_init__(self):
        for name in ("w_cfe", "w_fr", "w_co2", "w_work"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"{name} = {v!r}: expected a finite weight >= 0")
        if not 0.0 <= self.u_min < 1.0:
            raise ValueError(f"u_min = {self.u_min!r}: expected 0 <= u_min < 1")
        if not 0.0 <= self.r_max <= 1.0:
            raise ValueError(f"r_max = {self.r_max!r}: expected 0 <= r_max <= 1")
        if not 0.0 <= self.trigger_floor_fraction <= 1.0:
            raise ValueError(f"trigger_floor_fraction = {self.trigger_floor_fraction!r}: expected in [0, 1]")
        _grid_count("u", 1.0 - self.u_min, self.u_step)
        if self.r_max > 0.0:
            _grid_count("r", self.r_max, self.r_step)
        lv = tuple(float(x) for x in self.trigger_levels_hz)
        if not lv or any(b >= a for a, b in itertools.pairwise(lv)):
            raise ValueError(f"trigger_levels_hz = {self.trigger_levels_hz!r}: expected at least one level, "
                             "strictly decreasing (e.g. 49.7, 49.6, 49.5 Hz)")
        if self.release_level_hz is not None and not self.release_level_hz > lv[0]:
            raise ValueError(f"release_level_hz = {self.release_level_hz!r}: expected above the highest "
                             f"trigger level {lv[0]:g} Hz")
        if not (self.table_validity_s > 0.0):
            raise ValueError(f"table_validity_s = {self.table_validity_s!r}: expected > 0 s")


def _grid_count(name: str, span: float, step: float) -> int:
    if not (math.isfinite(step) and step > 0.0):
        raise ValueError(f"{name}_step = {step!r}: expected a finite step > 0")
    n = span / step
    if abs(n - round(n)) > 1e-9 * max(1.0, n):
        raise ValueError(f"{name}_step = {step!r}: the {name} span {span:g} must be a whole number of steps")
    return round(n)


def operating_grid(params: Tier3Params) -> tuple[np.ndarray, np.ndarray]:
    """The searched grids ``(u_grid, r_grid)`` [-], both ascending, endpoints exact."""
    nu = _grid_count("u", 1.0 - params.u_min, params.u_step)
    u = np.linspace(params.u_min, 1.0, nu + 1)
    if params.r_max == 0.0:
        return u, np.zeros(1)
    nr = _grid_count("r", params.r_max, params.r_step)
    return u, np.linspace(0.0, params.r_max, nr + 1)


def _facility(fn: FacilityPowerFn | None, it_power_w: np.ndarray) -> np.ndarray:
    """Apply the facility model (identity for the CI-only variant) and check its output."""
    if fn is None:
        return np.asarray(it_power_w, dtype=float)
    out = np.asarray(fn(np.asarray(it_power_w, dtype=float)), dtype=float)
    if out.shape != np.shape(it_power_w):
        raise ValueError(f"facility_power_fn returned shape {out.shape} for IT power of shape "
                         f"{np.shape(it_power_w)}; expected the same shape (a vectorised function)")
    if not np.isfinite(out).all() or (out < np.asarray(it_power_w) - 1e-9 * np.abs(it_power_w)).any():
        raise ValueError("facility_power_fn returned a non-finite value or facility power below IT power; "
                         "expected finite facility_power_w >= it_power_w")
    return out


def _broadcast_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.broadcast_arrays(a, b)``'s values; a one-element array that is broadcast is
    filled into a new array (``np.full``, cheaper than ``np.broadcast_to``'s view)."""
    if a.shape == b.shape:
        return a, b
    shape = np.broadcast(a, b).shape
    if a.shape != shape:
        a = np.full(shape, a.reshape(())) if a.size == 1 else np.broadcast_to(a, shape)
    if b.shape != shape:
        b = np.full(shape, b.reshape(())) if b.size == 1 else np.broadcast_to(b, shape)
    return a, b


def meter_reserve_w(it_max_power_w: float, u, r, facility_power_fn: FacilityPowerFn | None = None, *,
                    elementwise: bool = False):
    """Reserve seen at the facility meter when IT power drops from ``u`` to ``u - r`` [W].

    ``D = F(u P_max) - F((u - r) P_max)``, i.e. ``ΔP_IT x`` the model's mean marginal
    factor over the step (``docs/metrics.md`` §1). Arrays broadcast.

    Parameters
    ----------
    it_max_power_w : float
        Cluster IT power at ``u = 1`` [W], > 0.
    u, r : float or array
        Operating fraction and reserve band [-].
    facility_power_fn : callable or None
        Vectorised ``it_power_w -> facility_power_w`` [W]; None: facility = IT power.
    elementwise : bool
        True where ``facility_power_fn`` maps each element on its own, whatever else the
        array holds (Eq. 4 does): with arrays ``u`` or ``r``, ``F`` is then called once on
        both operating points together (the same values, one call fewer; a shape error
        names the joined array).
    """
    u, r = _broadcast_pair(np.asarray(u, dtype=float), np.asarray(r, dtype=float))
    top, low = u * it_max_power_w, (u - r) * it_max_power_w
    if elementwise and facility_power_fn is not None and u.ndim >= 1:
        both = _facility(facility_power_fn, np.concatenate((top.ravel(), low.ravel())))
        return (both[:top.size] - both[top.size:]).reshape(top.shape)
    return _facility(facility_power_fn, top) - _facility(facility_power_fn, low)


def fr_quality(delivered_w, committed_w: float):
    """FR-provision quality ``min(1, delivered / committed)`` [-] (``docs/metrics.md`` §1).

    1 where nothing is committed (``committed_w == 0``); 0 for no or negative delivery.
    """
    if not (math.isfinite(committed_w) and committed_w >= 0.0):
        raise ValueError(f"committed_w = {committed_w!r}: expected a finite reserve >= 0 W")
    d = np.asarray(delivered_w, dtype=float)
    if committed_w == 0.0:
        return np.ones_like(d)
    return np.clip(d / committed_w, 0.0, 1.0)


@dataclass(frozen=True)
class ScoreTable:
    """Every candidate's score and terms; 2-D arrays are indexed ``[i_u, i_r]``.

    ``objective`` is ``-inf`` where infeasible (``u - r < trigger_floor_fraction``).
    """

    u_grid: np.ndarray
    r_grid: np.ndarray
    objective: np.ndarray
    feasible: np.ndarray
    fr_quality: np.ndarray
    meter_reserve_w: np.ndarray
    energy_fraction: np.ndarray         # e(u), shape (n_u,)
    facility_power_w: np.ndarray        # F(u P_max), shape (n_u,)
    cfe_term: np.ndarray                # cff e(u), shape (n_u,)
    co2_term: np.ndarray                # (CI / CI_ref) e(u), shape (n_u,)


class Tier3Choice(NamedTuple):
    """Result of :func:`select_operating_point`; unpacks as ``u, r, objective, table``."""

    u: float
    r: float
    objective: float
    table: ScoreTable


def _check_hour(it_max_power_w, ci_g_per_kwh, carbon_free_fraction, ci_ref_g_per_kwh, committed_reserve_w):
    checks = (
        ("it_max_power_w", it_max_power_w, it_max_power_w > 0, "a finite power > 0 W"),
        ("ci_g_per_kwh", ci_g_per_kwh, ci_g_per_kwh >= 0, "a finite intensity >= 0 g/kWh"),
        ("carbon_free_fraction", carbon_free_fraction, 0 <= carbon_free_fraction <= 1, "in [0, 1]"),
        ("ci_ref_g_per_kwh", ci_ref_g_per_kwh, ci_ref_g_per_kwh > 0, "a finite intensity > 0 g/kWh"),
        ("committed_reserve_w", committed_reserve_w, committed_reserve_w >= 0, "a finite reserve >= 0 W"),
    )
    for name, v, ok, expected in checks:
        if not (math.isfinite(v) and ok):
            raise ValueError(f"{name} = {v!r}: expected {expected}")


def score_grid(it_max_power_w: float, ci_g_per_kwh: float, carbon_free_fraction: float,
               ci_ref_g_per_kwh: float, committed_reserve_w: float = 0.0,
               facility_power_fn: FacilityPowerFn | None = None,
               params: Tier3Params = Tier3Params()) -> ScoreTable:
    """Score every ``(u, r)`` candidate of the grid for one hour (pure, vectorised).

    Parameters
    ----------
    it_max_power_w : float
        Cluster IT power at ``u = 1`` [W], > 0.
    ci_g_per_kwh : float
        Grid carbon intensity of the coming hour [gCO2eq/kWh], >= 0.
    carbon_free_fraction : float
        Carbon-free share of the grid mix in that hour [-], in [0, 1].
    ci_ref_g_per_kwh : float
        Normalising intensity [gCO2eq/kWh], > 0 (recommended: mean of the 24 h look-ahead).
    committed_reserve_w : float
        FFR reserve committed at the facility meter for the hour [W], >= 0.
    facility_power_fn : callable or None
        Vectorised ``it_power_w -> facility_power_w`` [W] (the PUE model); None gives the
        CI-only variant (facility power = IT power).
    params : Tier3Params
        Weights and grid.

    Returns
    -------
    ScoreTable
    """
    _check_hour(it_max_power_w, ci_g_per_kwh, carbon_free_fraction, ci_ref_g_per_kwh, committed_reserve_w)
    u, r = operating_grid(params)
    fac_u = _facility(facility_power_fn, u * it_max_power_w)
    fac_0 = float(_facility(facility_power_fn, np.array([0.0]))[0])
    e = (fac_u - fac_0) / it_max_power_w
    uu, rr = np.meshgrid(u, r, indexing="ij")
    feasible = uu - rr >= params.trigger_floor_fraction - 1e-12
    low = np.where(feasible, uu - rr, uu)  # infeasible cells: evaluate at u (no step), masked below
    delivered = fac_u[:, None] - _facility(facility_power_fn, low * it_max_power_w)
    q = fr_quality(delivered, committed_reserve_w)
    cfe = carbon_free_fraction * e
    co2 = (ci_g_per_kwh / ci_ref_g_per_kwh) * e
    j = (params.w_cfe * cfe - params.w_co2 * co2 + params.w_work * u)[:, None] + params.w_fr * q
    j = np.where(feasible, j, -np.inf)
    return ScoreTable(u_grid=u, r_grid=r, objective=j, feasible=feasible, fr_quality=np.where(feasible, q, np.nan),
                      meter_reserve_w=np.where(feasible, delivered, np.nan), energy_fraction=e,
                      facility_power_w=fac_u, cfe_term=cfe, co2_term=co2)


def select_operating_point(it_max_power_w: float, ci_g_per_kwh: float, carbon_free_fraction: float,
                           ci_ref_g_per_kwh: float, committed_reserve_w: float = 0.0,
                           facility_power_fn: FacilityPowerFn | None = None,
                           params: Tier3Params = Tier3Params()) -> Tier3Choice:
    """The best ``(u, r)`` of the grid for one hour (pure); arguments as :func:`score_grid`.

    Ties (objective within ``TIE_RTOL``) go to the smallest ``r``, then the largest ``u``.

    Returns
    -------
    Tier3Choice
        ``(u, r, objective, table)``: operating fraction [-], reserve band [-], the
        objective [-] and the full :class:`ScoreTable`.
    """
    t = score_grid(it_max_power_w, ci_g_per_kwh, carbon_free_fraction, ci_ref_g_per_kwh, committed_reserve_w,
                   facility_power_fn, params)
    best = float(np.max(t.objective))  # finite: (u, r) = (1, 0) is always feasible (floor <= 1)
    near = t.objective >= best - TIE_RTOL * max(1.0, abs(best))
    i_r = int(np.argmax(near.any(axis=0)))              # smallest r among the ties
    i_u = int(np.flatnonzero(near[:, i_r])[-1])          # then the largest u
    return Tier3Choice(float(t.u_grid[i_u]), float(t.r_grid[i_r]), float(t.objective[i_u, i_r]), t)


def island_caps_w(u: float, r: float, max_power_w, min_limit_w, max_limit_w=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-cohort caps of an operating point: ``(normal, trigger)`` [W per GPU].

    ``normal = clip(u P_max, min, max)`` and ``trigger = clip((u - r) P_max, min, max)``
    with ``[min, max]`` the device power-limit range. Clipping at the minimum limit means
    a cohort may shed less than ``r P_max``; size ``trigger_floor_fraction`` to avoid it.

    Parameters
    ----------
    u, r : float
        Operating fraction and reserve band [-], ``0 <= r <= u <= 1``.
    max_power_w : array
        Per-cohort power at ``u = 1`` [W per GPU], > 0.
    min_limit_w, max_limit_w : array
        Device power-limit range per cohort [W per GPU]; ``max_limit_w`` defaults to
        ``max_power_w``.
    """
    if not (0.0 <= r <= u <= 1.0):
        raise ValueError(f"u = {u!r}, r = {r!r}: expected 0 <= r <= u <= 1")
    pmax = np.atleast_1d(np.asarray(max_power_w, dtype=float))
    lo = np.broadcast_to(np.asarray(min_limit_w, dtype=float), pmax.shape)
    hi = pmax if max_limit_w is None else np.broadcast_to(np.asarray(max_limit_w, dtype=float), pmax.shape)
    if not (np.all(np.isfinite(pmax)) and np.all(pmax > 0)):
        raise ValueError("max_power_w: expected finite powers > 0 W per cohort")
    if not (np.all(np.isfinite(lo)) and np.all(lo > 0) and np.all(hi >= lo)):
        raise ValueError("min_limit_w / max_limit_w: expected finite 0 < min_limit_w <= max_limit_w per cohort")
    return np.clip(u * pmax, lo, hi), np.clip((u - r) * pmax, lo, hi)


@dataclass(frozen=True)
class Tier3Decision:
    """One hourly decision of :class:`Tier3Selector`."""

    version: int                 # 1 for the first decision, +1 at each
    decided_s: float             # when it was taken [s, the caller's clock]
    u: float
    r: float
    objective: float
    committed_reserve_w: float
    pue_aware: bool
    table: ScoreTable


class Tier3Selector:
    """The hourly selector as a component: parameters, the last decision, the island table.

    Parameters
    ----------
    params : Tier3Params
    facility_power_fn : callable or None
        Vectorised ``it_power_w -> facility_power_w`` [W]; None: the CI-only variant.
    """

    def __init__(self, params: Tier3Params = Tier3Params(), facility_power_fn: FacilityPowerFn | None = None):
        if facility_power_fn is not None and not callable(facility_power_fn):
            raise ValueError(f"facility_power_fn = {facility_power_fn!r}: expected a callable or None")
        self.params = params
        self.facility_power_fn = facility_power_fn
        self.decision: Tier3Decision | None = None
        self._version = 0

    @property
    def pue_aware(self) -> bool:
        return self.facility_power_fn is not None

    def decide(self, now_s: float, it_max_power_w: float, ci_g_per_kwh: float, carbon_free_fraction: float,
               ci_ref_g_per_kwh: float, committed_reserve_w: float = 0.0) -> Tier3Decision:
        """Select the operating point for the hour starting at ``now_s``; bumps the version."""
        c = select_operating_point(it_max_power_w, ci_g_per_kwh, carbon_free_fraction, ci_ref_g_per_kwh,
                                   committed_reserve_w, self.facility_power_fn, self.params)
        self._version += 1
        self.decision = Tier3Decision(self._version, float(now_s), c.u, c.r, c.objective,
                                      float(committed_reserve_w), self.pue_aware, c.table)
        return self.decision

    def _require(self) -> Tier3Decision:
        if self.decision is None:
            raise ValueError("no decision yet: call decide() before asking for island caps")
        return self.decision

    def island_rows(self, max_power_w, min_limit_w, max_limit_w=None) -> tuple[tuple[float, ...], tuple[str, ...],
                                                                                 np.ndarray]:
        """``(levels_hz, kinds, caps_w)`` of the island table for the last decision.

        One trigger row per ``trigger_levels_hz`` holding the reduced caps
        ``clip((u - r) P_max)``, then (if ``release_level_hz``) one release row holding
        the normal caps ``clip(u P_max)``; ``caps_w`` has shape (n_rows, n_cohorts).
        """
        d = self._require()
        normal, trig = island_caps_w(d.u, d.r, max_power_w, min_limit_w, max_limit_w)
        p = self.params
        levels = tuple(float(x) for x in p.trigger_levels_hz)
        kinds = ("trigger",) * len(levels)
        rows = [trig] * len(levels)
        if p.release_level_hz is not None:
            levels += (float(p.release_level_hz),)
            kinds += ("release",)
            rows.append(normal)
        return levels, kinds, np.vstack(rows)

    def island_table_bytes(self, created_s: float, max_power_w, min_limit_w, max_limit_w=None,
                           cohort_ids: Sequence[int] | None = None) -> bytes:
        """The encoded island table of the last decision (:func:`~twin.control.island_table.encode_table`).

        ``created_s`` [s since 1970 UTC] is given by the caller; the table expires
        ``table_validity_s`` later. Its ``meta`` carries the writer, the decision version
        and the operating point.
        """
        d = self._require()
        levels, kinds, caps = self.island_rows(max_power_w, min_limit_w, max_limit_w)
        meta = {"writer": "tier3", "decision_version": d.version, "u": d.u, "r": d.r,
                "objective": d.objective, "pue_aware": d.pue_aware,
                "committed_reserve_w": d.committed_reserve_w}
        return encode_table(levels, caps, created_s, meta, kinds=kinds, cohort_ids=cohort_ids,
                            expires_s=float(created_s) + self.params.table_validity_s)

    def config(self) -> dict:
        """Parameters as a plain dict (for results metadata)."""
        return {**asdict(self.params), "pue_aware": self.pue_aware}
