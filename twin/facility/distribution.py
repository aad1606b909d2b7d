"""Electrical distribution: utility meter -> transformers -> UPS -> PDUs -> racks.

A small typed topology (one dataclass per element kind) over the loss models of
:mod:`twin.physics.electrical`, with redundancy, failover, capacity checks, power
quality at the meter and emergency load shedding (DCPI §6.2.1 c, d).

Topology. Each element names its upstream ``sources``. An element is *alive* when it
has not failed and at least one of its sources is alive (the utility meter is the
root). A load is shared equally among its alive sources (active-active), so

* N+1: N+1 parallel units all list the same downstream loads; when one fails the other
  N carry its share (:func:`standard_topology` with ``redundancy="N+1"``);
* 2N: every rack lists an A-side and a B-side PDU on independent chains; when one side
  fails the other carries the whole rack (``redundancy="2N"``).

A rack with no alive source is unserved (its IT load is reported, not delivered).

Power flow (bottom-up, exact for the loss models): rack input = PSU input for its IT
load; every other element's output is the sum of its children's inputs times their
share (1 / number of alive sources), and its input is output + its own loss. The meter
reads the utility element's input (the utility element has no loss).

Power quality: racks draw with the PSU THD implied by the ENERGY STAR PF floor at unity
displacement; a UPS re-rectifies, so upstream of it the UPS input figures hold (PF 0.99
above 25 % load, THDi 3 %); PDUs and transformers pass P, Q and harmonic VA up, adding
their losses as real power. Sources in :mod:`twin.physics.electrical` and
``docs/power.md``.

Units SI in names. Time is whatever the caller passes (``t_s``); nothing reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from twin.physics.electrical import (
    TRANSFORMER_2500KVA_TIER2_PLACEHOLDER,
    UPS_INPUT_THD,
    harmonic_terms,
    power_quality,
    psu_input_power_w,
    psu_thd,
    transformer_loss_w,
    ups_input_power_factor,
    ups_loss_w,
)

__all__ = [
    "PRIORITIES",
    "Distribution",
    "DistributionFlows",
    "EvenSpreadLossCurve",
    "Pdu",
    "Rack",
    "ShedDecision",
    "ShedLog",
    "ShedScope",
    "ShedWorkload",
    "SwitchEvent",
    "Transformer",
    "Ups",
    "Utility",
    "plan_load_shedding",
    "standard_topology",
]


def _positive(name: str, value: float, unit: str = " W") -> float:
    v = float(value)
    if not (v > 0.0 and math.isfinite(v)):
        raise ValueError(f"{name} = {value!r}{unit}: expected a finite value > 0{unit}")
    return v


def _nonneg(name: str, value: float, unit: str = " W") -> float:
    v = float(value)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"{name} = {value!r}{unit}: expected a finite value >= 0{unit}")
    return v


# ------------------------------------------------------------------------ elements


@dataclass(frozen=True)
class Utility:
    """The utility connection and its revenue meter (root of the tree; no loss).

    ``capacity_w``: contracted / connection capacity at the meter [W].
    """

    name: str
    capacity_w: float
    sources: tuple = ()
    kind = "utility"

    def __post_init__(self):
        _positive(f"{self.name}.capacity_w", self.capacity_w)
        if self.sources:
            raise ValueError(f"{self.name}: sources = {self.sources!r}: expected () for the utility meter")

    def loss_w(self, output_w, apparent_va, alive):
        return np.zeros_like(np.asarray(output_w, dtype=float))


@dataclass(frozen=True)
class Transformer:
    """Distribution transformer: ``P0 + (S/S_rated)^2 Pk`` (REFERENCE.md §8.4).

    ``capacity_w`` defaults to ``rated_va`` (unity PF). Defaults: the 2.5 MVA EU 548/2014
    Tier 2 **placeholder, unverified** values (P0 1575 W, Pk 18 500 W).
    """

    name: str
    sources: tuple
    rated_va: float = TRANSFORMER_2500KVA_TIER2_PLACEHOLDER.rated_va
    no_load_loss_w: float = TRANSFORMER_2500KVA_TIER2_PLACEHOLDER.no_load_loss_w
    load_loss_w: float = TRANSFORMER_2500KVA_TIER2_PLACEHOLDER.load_loss_w
    capacity_w: float | None = None
    kind = "transformer"

    def __post_init__(self):
        _positive(f"{self.name}.rated_va", self.rated_va, " VA")
        _nonneg(f"{self.name}.no_load_loss_w", self.no_load_loss_w)
        _nonneg(f"{self.name}.load_loss_w", self.load_loss_w)
        if self.capacity_w is None:
            object.__setattr__(self, "capacity_w", float(self.rated_va))
        _positive(f"{self.name}.capacity_w", self.capacity_w)

    def loss_w(self, output_w, apparent_va, alive):
        """Energised (alive): ``P0 + (S/S_rated)^2 Pk`` with S the RMS apparent power [W]."""
        if not alive:
            return np.zeros_like(np.asarray(output_w, dtype=float))
        return transformer_loss_w(apparent_va, self.rated_va, self.no_load_loss_w, self.load_loss_w)


@dataclass(frozen=True)
class Ups:
    """Static UPS module; ``capacity_w`` is its rated real-power output [W].

    ``mode``: ``"double_conversion"`` (assumed 95 % curve) or ``"eco"`` (loss / 3),
    REFERENCE.md §2.4, §8.5.
    """

    name: str
    sources: tuple
    capacity_w: float
    mode: str = "double_conversion"
    kind = "ups"

    def __post_init__(self):
        _positive(f"{self.name}.capacity_w", self.capacity_w)
        if self.mode not in ("double_conversion", "eco"):
            raise ValueError(f"{self.name}.mode = {self.mode!r}: expected 'double_conversion' or 'eco'")

    def loss_w(self, output_w, apparent_va, alive):
        return ups_loss_w(output_w, self.capacity_w, self.mode)


@dataclass(frozen=True)
class Pdu:
    """Power distribution unit / busway: resistive loss ``f * C * (P/C)^2`` [W].

    ``full_load_loss_fraction`` f defaults to 0.005 (0.5 % at rated load): an
    assumption, no sourced PDU loss (REFERENCE.md §2.4 names the term only).
    """

    name: str
    sources: tuple
    capacity_w: float
    full_load_loss_fraction: float = 0.005
    kind = "pdu"

    def __post_init__(self):
        _positive(f"{self.name}.capacity_w", self.capacity_w)
        if not 0.0 <= self.full_load_loss_fraction < 1.0:
            raise ValueError(f"{self.name}.full_load_loss_fraction = {self.full_load_loss_fraction!r}: "
                             "expected in [0, 1)")

    def loss_w(self, output_w, apparent_va, alive):
        x = np.asarray(apparent_va, dtype=float) / self.capacity_w
        return self.full_load_loss_fraction * self.capacity_w * x * x


@dataclass(frozen=True)
class Rack:
    """A rack: its PSUs turn the IT (DC) load into AC input (REFERENCE.md §8.3 curves).

    ``capacity_w``: circuit limit on the rack's AC input [W]. ``psu_rated_w``: rated DC
    output of all its PSUs together [W] (default ``capacity_w``). ``psu_curve``:
    ``"80plus_titanium"`` (default) or ``"80plus_platinum"``.
    """

    name: str
    sources: tuple
    capacity_w: float
    psu_rated_w: float | None = None
    psu_curve: str = "80plus_titanium"
    kind = "rack"

    def __post_init__(self):
        _positive(f"{self.name}.capacity_w", self.capacity_w)
        if self.psu_rated_w is None:
            object.__setattr__(self, "psu_rated_w", float(self.capacity_w))
        _positive(f"{self.name}.psu_rated_w", self.psu_rated_w)


Element = Utility | Transformer | Ups | Pdu | Rack


@dataclass(frozen=True)
class SwitchEvent:
    """A failure or restoration, as recorded by :meth:`Distribution.fail` / ``restore``."""

    t_s: float
    element: str
    action: str  # "fail" | "restore"
    reason: str


@dataclass(frozen=True)
class DistributionFlows:
    """Power at every element for one set of rack loads.

    Attributes
    ----------
    power_in_w, power_out_w, loss_w : dict[str, float or array]
        Input, output and own loss of each element [W] (0 for dead elements).
    meter_w : float or array
        Real power at the utility meter [W].
    it_w : float or array
        IT load actually served [W].
    unserved_it_w : float or array
        IT load of racks with no alive source [W].
    unserved_racks : tuple of str
    overloaded : tuple of str
        Elements whose power exceeds their capacity (anywhere along the time axis):
        racks and the utility on input, every other element on output.
    share : dict[str, numpy.ndarray]
        Fraction of each rack's input that flows through each element, shape (n_racks,).
    thd_meter, power_factor_meter : float or array
        Current THD and true PF at the meter [-].
    alive : frozenset of str
    """

    power_in_w: dict
    power_out_w: dict
    loss_w: dict
    meter_w: object
    it_w: object
    unserved_it_w: object
    unserved_racks: tuple
    overloaded: tuple
    share: dict
    thd_meter: object
    power_factor_meter: object
    alive: frozenset

    @property
    def total_loss_w(self):
        """Sum of all element losses (PSUs included) [W]; ``meter_w - it_w`` to rounding."""
        return sum(self.loss_w.values())


class Distribution:
    """A distribution topology with failures, flows, headroom and shedding limits.

    Parameters
    ----------
    elements : iterable of Utility, Transformer, Ups, Pdu, Rack
        Exactly one :class:`Utility`; every other element names >= 1 existing source;
        no cycles; names unique.
    """

    def __init__(self, elements: Iterable[Element]):
        self.elements: dict[str, Element] = {}
        for e in elements:
            if e.name in self.elements:
                raise ValueError(f"element name {e.name!r} appears twice: expected unique names")
            self.elements[e.name] = e
        roots = [n for n, e in self.elements.items() if isinstance(e, Utility)]
        if len(roots) != 1:
            raise ValueError(f"utility elements = {roots!r}: expected exactly one")
        self.meter = roots[0]
        for n, e in self.elements.items():
            if not isinstance(e, Utility) and not e.sources:
                raise ValueError(f"{n}.sources = (): expected at least one upstream element")
            for s in e.sources:
                if s not in self.elements:
                    raise ValueError(f"{n}.sources names {s!r}: no such element")
                if isinstance(self.elements[s], Rack):
                    raise ValueError(f"{n}.sources names rack {s!r}: racks feed nothing")  # noqa: TRY004
        self.children: dict[str, list[str]] = {n: [] for n in self.elements}
        for n, e in self.elements.items():
            for s in e.sources:
                self.children[s].append(n)
        self.order_top_down = self._topological_order()
        self.racks = tuple(n for n in self.order_top_down if isinstance(self.elements[n], Rack))
        self._rack_index = {r: i for i, r in enumerate(self.racks)}
        self.failed: set[str] = set()
        self.events: list[SwitchEvent] = []

    def _topological_order(self) -> list[str]:
        indeg = {n: len(e.sources) for n, e in self.elements.items()}
        ready = [n for n, d in indeg.items() if d == 0]
        order = []
        while ready:
            n = ready.pop()
            order.append(n)
            for c in self.children[n]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        if len(order) != len(self.elements):
            raise ValueError("sources form a cycle: expected a directed acyclic topology")
        return order

    # ------------------------------------------------------------- failures

    def fail(self, element: str, t_s: float, reason: str = "failure") -> SwitchEvent:
        """Take ``element`` out of service at ``t_s`` [s]; its load fails over to redundant sources."""
        if element not in self.elements:
            raise ValueError(f"element = {element!r}: no such element")
        self.failed.add(element)
        ev = SwitchEvent(float(t_s), element, "fail", reason)
        self.events.append(ev)
        return ev

    def restore(self, element: str, t_s: float, reason: str = "restored") -> SwitchEvent:
        """Return ``element`` to service at ``t_s`` [s]."""
        if element not in self.failed:
            raise ValueError(f"element = {element!r}: not failed (failed: {sorted(self.failed)})")
        self.failed.discard(element)
        ev = SwitchEvent(float(t_s), element, "restore", reason)
        self.events.append(ev)
        return ev

    def alive(self) -> frozenset:
        """Elements in service and fed through at least one alive source."""
        live = set()
        for n in self.order_top_down:
            e = self.elements[n]
            if n in self.failed:
                continue
            if isinstance(e, Utility) or any(s in live for s in e.sources):
                live.add(n)
        return frozenset(live)

    # ----------------------------------------------------------------- flows

    def compute(self, rack_it_w: Mapping[str, object]) -> DistributionFlows:
        """Power, losses and power quality at every element for the rack IT loads.

        Parameters
        ----------
        rack_it_w : mapping rack name -> float or array
            IT (DC, after the PSUs) load of each rack [W], >= 0; racks not named draw 0.
            Arrays (e.g. over time) broadcast together.

        Returns
        -------
        DistributionFlows
        """
        for r in rack_it_w:
            if r not in self._rack_index:
                raise ValueError(f"rack_it_w names {r!r}: not a rack of this topology")
        loads = {r: np.asarray(rack_it_w.get(r, 0.0), dtype=float) for r in self.racks}
        for r, v in loads.items():
            if np.any(v < 0) or not np.all(np.isfinite(v)):
                raise ValueError(f"rack_it_w[{r!r}] = {v!r}: expected finite values >= 0 W")
        zero = np.zeros(np.broadcast_shapes(*(v.shape for v in loads.values()))) if loads else np.zeros(())
        live = self.alive()
        n_src = {n: sum(1 for s in e.sources if s in live) for n, e in self.elements.items()}
        p_in, p_out, loss, q, h = {}, {}, {}, {}, {}
        share = {}
        nr = len(self.racks)
        for n in reversed(self.order_top_down):
            e = self.elements[n]
            sh = np.zeros(nr)
            if n not in live:
                p_in[n] = p_out[n] = loss[n] = q[n] = h[n] = zero
                share[n] = sh
                continue
            if isinstance(e, Rack):
                it = loads[n] + zero
                pin = psu_input_power_w(it, e.psu_rated_w, e.psu_curve)
                qq, hh = harmonic_terms(pin, psu_thd(it / e.psu_rated_w))
                p_out[n], p_in[n], loss[n], q[n], h[n] = it, pin, pin - it, qq, hh
                sh[self._rack_index[n]] = 1.0
                share[n] = sh
                continue
            out = zero.copy()
            qo, ho = zero.copy(), zero.copy()
            for c in self.children[n]:
                if c in live:
                    w = 1.0 / n_src[c]
                    out = out + w * p_in[c]
                    qo = qo + w * q[c]
                    ho = ho + w * h[c]
                    sh = sh + w * share[c]
            s_rms = np.sqrt(out**2 + qo**2 + ho**2)
            own = np.asarray(e.loss_w(out, s_rms, True), dtype=float) + zero
            pin = out + own
            if isinstance(e, Ups):
                pf = ups_input_power_factor(out / e.capacity_w)
                dpf = np.minimum(pf * math.sqrt(1.0 + UPS_INPUT_THD**2), 1.0)
                qq, hh = harmonic_terms(pin, UPS_INPUT_THD, dpf)
            else:
                qq, hh = qo, ho
            p_out[n], p_in[n], loss[n], q[n], h[n] = out, pin, own, qq, hh
            share[n] = sh
        overloaded = []
        for n, e in self.elements.items():
            through = p_in[n] if isinstance(e, (Rack, Utility)) else p_out[n]
            if np.any(through > e.capacity_w):
                overloaded.append(n)
        unserved = tuple(r for r in self.racks if r not in live)
        it_served = sum((loads[r] + zero for r in self.racks if r in live), zero.copy())
        it_unserved = sum((loads[r] + zero for r in unserved), zero.copy())
        thd, pf = power_quality(p_in[self.meter], q[self.meter], h[self.meter])
        return DistributionFlows(
            power_in_w=p_in, power_out_w=p_out, loss_w=loss, meter_w=p_in[self.meter],
            it_w=it_served, unserved_it_w=it_unserved, unserved_racks=unserved,
            overloaded=tuple(overloaded), share=share, thd_meter=thd, power_factor_meter=pf,
            alive=live)

    def circuit_headroom_w(self, element: str, flows: DistributionFlows):
        """Extra input power a rack (or any element) can take before a capacity is hit [W].

        For a rack: ``min(own headroom, min over alive sources s of headroom(s) * n_alive)``
        applied recursively up to the meter, since a rack's extra load splits equally over
        its ``n_alive`` sources. Marginal losses upstream are neglected (they are a few
        per cent of the increment), so use it with a margin. Negative when already
        overloaded; 0 for a dead element.

        Parameters
        ----------
        element : str
            Rack or PDU name (any element works).
        flows : DistributionFlows
            From :meth:`compute` with the current loads.
        """
        if element not in self.elements:
            raise ValueError(f"element = {element!r}: no such element")
        live = flows.alive

        def own(n):
            e = self.elements[n]
            through = flows.power_in_w[n] if isinstance(e, (Rack, Utility)) else flows.power_out_w[n]
            return e.capacity_w - through

        def path(n):
            e = self.elements[n]
            srcs = [s for s in e.sources if s in live]
            hr = own(n)
            if srcs:
                up = np.min(np.stack([np.asarray(path(s), dtype=float) for s in srcs]), axis=0) * len(srcs)
                hr = np.minimum(hr, up)
            return hr

        if element not in live:
            return np.zeros_like(np.asarray(flows.meter_w, dtype=float))
        return path(element)

    def shed_scopes(self, flows: DistributionFlows, rack_it_w: Mapping[str, object],
                    meter_limit_w: float | None = None) -> list[ShedScope]:
        """Shedding limits for every overloaded element (and an optional meter limit).

        For an element with power ``P`` (input for racks and the meter, output otherwise)
        over capacity ``C``, the IT load attributed to it is ``sum_r share_r IT_r``; the
        IT power it may keep is that times ``C / P`` (losses scale with load to first
        order; the transformer no-load loss makes this slightly conservative). A grid
        emergency signal sets ``meter_limit_w`` at the meter the same way. Scalar loads
        only (one instant).
        """
        it = np.array([float(np.asarray(rack_it_w.get(r, 0.0))) for r in self.racks])
        limits = {n: self.elements[n].capacity_w for n in flows.overloaded}
        if meter_limit_w is not None:
            limits[self.meter] = min(limits.get(self.meter, math.inf), _nonneg("meter_limit_w", meter_limit_w))
        scopes = []
        for n, cap in limits.items():
            e = self.elements[n]
            through = float(np.asarray(flows.power_in_w[n] if isinstance(e, (Rack, Utility))
                                       else flows.power_out_w[n]))
            attributed = float(flows.share[n] @ it)
            if through <= cap or attributed <= 0.0:
                continue
            weights = {r: float(flows.share[n][i]) for i, r in enumerate(self.racks) if flows.share[n][i] > 0}
            scopes.append(ShedScope(n, weights, attributed * cap / through, attributed))
        return scopes


# ------------------------------------------------------- facility-run loss curve


class EvenSpreadLossCurve:
    """Distribution loss, PF and THD at the meter vs total IT power, IT spread evenly.

    For a facility run without rack placement: the total IT (DC) power ``P`` is spread
    evenly over the racks (``P / n_racks`` each), :meth:`Distribution.compute` is
    evaluated once on ``n_intervals + 1`` equally spaced points from 0 to ``max_it_w``
    and :meth:`at` interpolates linearly between them (a few µs, pure Python).

    Parameters
    ----------
    dist : Distribution
        The topology in its current (fault-free) state.
    max_it_w : float, optional
        Upper end of the table [W]; default: the racks' summed PSU rating.
    n_intervals : int
        Grid intervals (default 4096).

    Attributes
    ----------
    it_w, loss_w, psu_loss_w, meter_w, power_factor, thd : numpy.ndarray
        The table: IT power, total loss (PSUs included), PSU loss, meter power [W], PF and
        current THD at the meter [-].
    """

    def __init__(self, dist: Distribution, max_it_w: float | None = None, n_intervals: int = 4096):
        if not (isinstance(n_intervals, int) and n_intervals >= 1):
            raise ValueError(f"n_intervals = {n_intervals!r}: expected an integer >= 1")
        racks = dist.racks
        if not racks:
            raise ValueError("the topology has no racks: expected at least one")
        if max_it_w is None:
            max_it_w = sum(dist.elements[r].psu_rated_w for r in racks)
        self.max_it_w = _positive("max_it_w", max_it_w)
        self.it_w = np.linspace(0.0, self.max_it_w, n_intervals + 1)
        n = len(racks)
        chunk = max(1, 2_000_000 // max(len(dist.elements), 1))  # bound the temporary arrays
        parts = []
        for a in range(0, self.it_w.size, chunk):
            per_rack = self.it_w[a:a + chunk] / n
            fl = dist.compute({r: per_rack for r in racks})
            psu = sum(np.asarray(fl.loss_w[r], dtype=float) for r in racks)
            parts.append((np.asarray(fl.meter_w, dtype=float) - fl.it_w, psu, np.asarray(fl.meter_w, dtype=float),
                          np.asarray(fl.power_factor_meter, dtype=float), np.asarray(fl.thd_meter, dtype=float)))
        self.loss_w, self.psu_loss_w, self.meter_w, self.power_factor, self.thd = (
            np.concatenate([p[i] for p in parts]) for i in range(5))
        self._inv_step = n_intervals / self.max_it_w
        self._last = n_intervals
        # Python lists: per-tick lookups without numpy scalar overhead
        self._tables = [t.tolist() for t in (self.loss_w, self.psu_loss_w, self.power_factor, self.thd)]

    def at(self, it_w: float) -> tuple[float, float, float, float]:
        """(loss [W], PSU part of it [W], PF [-], THD [-]) at total IT power ``it_w`` [W].

        Linear interpolation in the table; raises ValueError outside ``[0, max_it_w]``.
        """
        x = it_w * self._inv_step
        i = int(x)
        if i >= self._last:
            if not x <= self._last * (1.0 + 1e-12):
                raise ValueError(f"it_w = {it_w!r} W: outside the distribution loss table "
                                 f"[0, {self.max_it_w:.6g}] W (the racks' summed PSU rating)")
            i = self._last - 1
        elif not x >= 0.0:
            raise ValueError(f"it_w = {it_w!r} W: expected >= 0 W")
        w = x - i
        loss, psu, pf, thd = self._tables
        return (loss[i] + w * (loss[i + 1] - loss[i]), psu[i] + w * (psu[i + 1] - psu[i]),
                pf[i] + w * (pf[i + 1] - pf[i]), thd[i] + w * (thd[i + 1] - thd[i]))


# ------------------------------------------------------------------ standard builder


def standard_topology(n_racks: int, rack_capacity_w: float, *, racks_per_pdu: int = 10,
                      redundancy: str = "N+1", transformer_rated_va: float = 2.5e6,
                      ups_capacity_w: float = 1.0e6, design_margin: float = 1.0,
                      utility_capacity_w: float | None = None, ups_mode: str = "double_conversion",
                      psu_curve: str = "80plus_titanium") -> Distribution:
    """Build utility -> transformers -> UPS -> PDUs -> racks with N+1 or 2N redundancy.

    * ``"N+1"``: ``N = ceil(design load / unit size)`` units plus one, for transformers
      and for UPS; every UPS is fed by every transformer (parallel bus), every PDU by
      every UPS; each PDU feeds ``racks_per_pdu`` racks (one source each).
    * ``"2N"``: two independent sides A and B, each with ``N`` transformers, ``N`` UPS and
      its own PDUs; each rack is fed by one A-side and one B-side PDU.

    The design load is ``n_racks * rack_capacity_w * design_margin`` [W]. PDU capacity is
    ``racks_per_pdu * rack_capacity_w``. The utility capacity defaults to the installed
    transformer capacity of one side (2N) or of N units (N+1).
    Transformer losses use the placeholder 2.5 MVA figures scaled linearly with rating
    (P0, Pk proportional to S_rated: an assumption, see docs/power.md).
    """
    if redundancy not in ("N+1", "2N"):
        raise ValueError(f"redundancy = {redundancy!r}: expected 'N+1' or '2N'")
    if not (isinstance(n_racks, int) and n_racks >= 1):
        raise ValueError(f"n_racks = {n_racks!r}: expected an integer >= 1")
    if not (isinstance(racks_per_pdu, int) and racks_per_pdu >= 1):
        raise ValueError(f"racks_per_pdu = {racks_per_pdu!r}: expected an integer >= 1")
    _positive("rack_capacity_w", rack_capacity_w)
    _positive("transformer_rated_va", transformer_rated_va, " VA")
    _positive("ups_capacity_w", ups_capacity_w)
    _positive("design_margin", design_margin, "")
    design_w = n_racks * rack_capacity_w * design_margin
    n_t = max(1, math.ceil(design_w / transformer_rated_va))
    n_u = max(1, math.ceil(design_w / ups_capacity_w))
    scale = transformer_rated_va / TRANSFORMER_2500KVA_TIER2_PLACEHOLDER.rated_va
    p0 = TRANSFORMER_2500KVA_TIER2_PLACEHOLDER.no_load_loss_w * scale
    pk = TRANSFORMER_2500KVA_TIER2_PLACEHOLDER.load_loss_w * scale
    n_pdu = math.ceil(n_racks / racks_per_pdu)
    pdu_cap = racks_per_pdu * rack_capacity_w
    util_cap = utility_capacity_w if utility_capacity_w is not None else n_t * transformer_rated_va
    els: list = [Utility("meter", util_cap)]
    if redundancy == "N+1":
        ts = tuple(f"T{i}" for i in range(n_t + 1))
        us = tuple(f"UPS{i}" for i in range(n_u + 1))
        els += [Transformer(t, ("meter",), transformer_rated_va, p0, pk) for t in ts]
        els += [Ups(u, ts, ups_capacity_w, ups_mode) for u in us]
        els += [Pdu(f"PDU{i}", us, pdu_cap) for i in range(n_pdu)]
        els += [Rack(f"R{j}", (f"PDU{j // racks_per_pdu}",), rack_capacity_w, psu_curve=psu_curve)
                for j in range(n_racks)]
    else:
        for side in "AB":
            ts = tuple(f"T{side}{i}" for i in range(n_t))
            us = tuple(f"UPS{side}{i}" for i in range(n_u))
            els += [Transformer(t, ("meter",), transformer_rated_va, p0, pk) for t in ts]
            els += [Ups(u, ts, ups_capacity_w, ups_mode) for u in us]
            els += [Pdu(f"PDU{side}{i}", us, pdu_cap) for i in range(n_pdu)]
        els += [Rack(f"R{j}", (f"PDUA{j // racks_per_pdu}", f"PDUB{j // racks_per_pdu}"), rack_capacity_w,
                     psu_curve=psu_curve) for j in range(n_racks)]
    return Distribution(els)


# ---------------------------------------------------------------- load shedding

#: Priority classes, most protected first. ``critical`` is never shed.
PRIORITIES = ("critical", "high", "normal", "low", "preemptible")


@dataclass(frozen=True)
class ShedWorkload:
    """A running workload as the shedding logic sees it.

    ``power_w`` [W] is its IT power, spread equally over ``racks``.
    """

    workload_id: str
    priority: str
    power_w: float
    racks: tuple

    def __post_init__(self):
        if self.priority not in PRIORITIES:
            raise ValueError(f"{self.workload_id}.priority = {self.priority!r}: expected one of {PRIORITIES}")
        _nonneg(f"{self.workload_id}.power_w", self.power_w)
        if not self.racks:
            raise ValueError(f"{self.workload_id}.racks = (): expected at least one rack")


@dataclass(frozen=True)
class ShedScope:
    """A capacity limit over a set of racks.

    ``rack_weights``: fraction of each rack's load that counts against the limit [-];
    ``available_it_w``: IT power the scope may keep [W]; ``load_it_w``: attributed now.
    """

    name: str
    rack_weights: dict
    available_it_w: float
    load_it_w: float = math.nan


@dataclass(frozen=True)
class ShedDecision:
    """One shedding decision (DCPI §6.2.1 d) with its reason and time."""

    t_s: float
    workload_id: str
    priority: str
    power_w: float
    action: str  # "shed" | "insufficient"
    scope: str
    reason: str


@dataclass
class ShedLog:
    """Append-only list of shedding decisions."""

    records: list = field(default_factory=list)

    def extend(self, decisions: Iterable[ShedDecision]) -> None:
        self.records.extend(decisions)

    def shed_ids(self) -> set:
        return {d.workload_id for d in self.records if d.action == "shed"}

    def to_rows(self) -> list[dict]:
        return [d.__dict__.copy() for d in self.records]


def _contribution_w(w: ShedWorkload, scope: ShedScope) -> float:
    per_rack = w.power_w / len(w.racks)
    return sum(per_rack * scope.rack_weights.get(r, 0.0) for r in w.racks)


def plan_load_shedding(workloads: Iterable[ShedWorkload], scopes: Iterable[ShedScope], t_s: float,
                       cause: str) -> list[ShedDecision]:
    """Choose workloads to shed so every scope fits its available power.

    For each scope in turn: its load is the sum of the workloads' contributions (power
    per rack times the rack's weight in the scope), less what earlier scopes already
    shed. Candidates are taken lowest priority first (``preemptible``, ``low``,
    ``normal``, ``high``; never ``critical``), largest contribution first within a
    class, until the load fits; then a give-back pass re-admits shed candidates (smallest
    first) whose return keeps the scope within its limit. If shedding every
    non-critical workload is not enough, an ``"insufficient"`` record names the
    remaining excess (the critical load itself is never shed).

    Parameters
    ----------
    workloads : iterable of ShedWorkload
    scopes : iterable of ShedScope
        E.g. :meth:`Distribution.shed_scopes` after a failure, or a meter limit from a
        grid emergency signal.
    t_s : float
        Decision time [s] (recorded).
    cause : str
        What triggered it ("UPS1 failure", "grid emergency signal", ...), recorded.

    Returns
    -------
    list of ShedDecision
        In decision order.
    """
    wl = list(workloads)
    rank = {p: i for i, p in enumerate(PRIORITIES)}
    shed: set = set()
    out: list = []
    for sc in scopes:
        contrib = {w.workload_id: _contribution_w(w, sc) for w in wl}
        load = sum(c for wid, c in contrib.items() if wid not in shed)
        excess = load - sc.available_it_w
        if excess <= 0.0:
            continue
        cands = sorted((w for w in wl if w.workload_id not in shed and w.priority != "critical"
                        and contrib[w.workload_id] > 0.0),
                       key=lambda w: (-rank[w.priority], -contrib[w.workload_id], w.workload_id))
        chosen = []
        remaining = excess
        for w in cands:
            if remaining <= 0.0:
                break
            chosen.append(w)
            remaining -= contrib[w.workload_id]
        # give back: re-admit the smallest chosen ones that still fit
        for w in sorted(chosen, key=lambda w: (contrib[w.workload_id], w.workload_id)):
            if remaining + contrib[w.workload_id] <= 0.0:
                remaining += contrib[w.workload_id]
                chosen.remove(w)
        for w in chosen:
            shed.add(w.workload_id)
            out.append(ShedDecision(
                float(t_s), w.workload_id, w.priority, w.power_w, "shed", sc.name,
                f"{cause}: {sc.name} carries {load:.6g} W of IT load against {sc.available_it_w:.6g} W "
                f"available (excess {excess:.6g} W); shed {w.priority} workload {w.workload_id} "
                f"({contrib[w.workload_id]:.6g} W in scope), lowest priority first, critical never shed"))
        if remaining > 0.0:
            out.append(ShedDecision(
                float(t_s), "", "critical", remaining, "insufficient", sc.name,
                f"{cause}: {sc.name} still exceeds its limit by {remaining:.6g} W after shedding every "
                "non-critical workload; critical load is protected and not shed"))
    return out
