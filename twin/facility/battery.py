"""Battery component: a thin stateful class over :mod:`twin.physics.battery`.

Follows Vessim's dispatchable pattern (``vessim/dispatchable.py``):
``feasible_range(dt_s) -> set_power(power_w) -> step(dt_s)``, plus ``config()`` and
``state()``. Sign convention: **positive power = charging** from the site bus
(consumption), negative = discharging into it; ``grid_import = site_load + power``.

Energy bookkeeping per step, every term from its model (no residuals):
``energy_in_j - energy_out_j == stored_change_j + loss_j`` (to rounding; every step
checks it with :func:`check_energy_balance`), where ``loss_j = conversion_loss_j +
fade_loss_j``: the charge/discharge loss of the efficiency model, plus, on the steps
where an ageing window closes, the stored energy that goes with the lost capacity.
Capacity fade keeps the SoC (stored energy / aged capacity) unchanged, so a battery
held full really holds only ``q`` times its nominal energy, and fade never pushes the
SoC out of its window.

Ageing follows BLAST-Lite's windowed scheme (``simulate_battery_life``, REFERENCE.md
§8.1): stressors accumulate over a window that closes after ``ageing_window_s`` (1 day)
or once more than ``ageing_window_efc`` (1 EFC) has passed, whichever comes first;
then the time-averaged rates advance the two loss states with
:func:`twin.physics.battery.power_law_state_step`. BLAST-Lite also breaks windows at
rainflow turning points of the SoC profile, which needs look-ahead; we close on the
time/EFC limits only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from twin.physics.battery import (
    KELVIN_AT_0_C,
    LFP_GR_250AH_PRISMATIC_2019,
    LFP_GR_250AH_PRISMATIC_2019_VALIDITY,
    ROUND_TRIP_EFFICIENCY_ATB,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    BlastLfpParams,
    anode_potential_v,
    conversion_loss_power_w,
    lfp_calendar_rate,
    lfp_cycle_temperature_factor,
    power_law_state_step,
    power_limits_w,
    split_round_trip_efficiency,
    stored_power_w,
)

J_PER_KWH = 3.6e6
W_PER_KW = 1e3

#: BLAST-Lite ignores |dSoC/dt| below this when averaging the C-rate (storage) [1/h].
_C_RATE_FLOOR_PER_H = 1e-2


@dataclass(frozen=True)
class BatteryFlows:
    """Energy flows of one step (``*_j`` over the step) and the state at its end.

    Attributes
    ----------
    energy_in_j : float
        Energy taken from the site bus while charging [J], >= 0.
    energy_out_j : float
        Energy delivered to the site bus while discharging [J], >= 0.
    loss_j : float
        All losses of the step, ``conversion_loss_j + fade_loss_j`` [J], >= 0.
    stored_change_j : float
        Change of stored energy [J] (negative while discharging; includes
        ``-fade_loss_j``).
    soc : float
        State of charge at the end of the step [-], fraction of the aged capacity.
    throughput_j : float
        Cell-side energy throughput of the step, ``|stored_change_j|`` [J]
        (``throughput / (2 * nominal capacity)`` is the step's EFC).
    capacity_fraction : float
        Relative capacity q after ageing, at the end of the step [-].
    conversion_loss_j : float
        Charge and discharge loss from the efficiency model [J], >= 0.
    fade_loss_j : float
        Stored energy removed with the capacity lost when an ageing window closed in
        this step, ``soc * (C_before - C_after)`` [J], >= 0 (0 on most steps).
    power_w : float
        Bus power held over the step [W], positive = charging.
    dt_s : float
        Step length [s].
    """

    energy_in_j: float
    energy_out_j: float
    loss_j: float
    stored_change_j: float
    soc: float
    throughput_j: float
    capacity_fraction: float
    conversion_loss_j: float
    fade_loss_j: float
    power_w: float
    dt_s: float

    @property
    def balance_residual_j(self) -> float:
        """``energy_in - energy_out - stored_change - loss`` [J]; 0 to rounding."""
        return self.energy_in_j - self.energy_out_j - self.stored_change_j - self.loss_j


def check_energy_balance(flows: BatteryFlows, rtol: float = 1e-12) -> None:
    """Raise ``ValueError`` unless ``energy_in - energy_out == stored_change + loss``.

    The tolerance is ``rtol`` times the largest term (1e-12: floating-point rounding of
    a handful of products is ~1e-16 relative; any modelling leak is far larger).
    """
    scale = max(flows.energy_in_j, flows.energy_out_j, abs(flows.stored_change_j), flows.loss_j)
    residual = flows.balance_residual_j
    if not abs(residual) <= rtol * scale:
        raise ValueError(
            f"battery energy balance broken: in {flows.energy_in_j!r} J - out {flows.energy_out_j!r} J "
            f"- stored change {flows.stored_change_j!r} J - loss {flows.loss_j!r} J = {residual!r} J, "
            f"allowed |residual| <= {rtol * scale!r} J (rtol {rtol:g})")


def _check_range(name: str, value, lo: float, hi: float, lo_open: bool = False) -> float:
    v = float(value)
    ok = (lo < v if lo_open else lo <= v) and v <= hi
    if not (math.isfinite(v) and ok):
        raise ValueError(f"{name} = {value!r}: expected {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    return v


class Battery:
    """Grid-side battery (BESS or grid-interactive UPS) with LFP ageing.

    Parameters
    ----------
    capacity_kwh : float
        Nominal (beginning-of-life) energy capacity [kWh], > 0.
    max_charge_kw, max_discharge_kw : float
        Converter limits at the bus [kW], >= 0 (discharge as a magnitude).
    soc_min, soc_max : float
        Operating SoC window [-], ``0 <= soc_min < soc_max <= 1`` (no sourced default,
        REFERENCE.md §4: full window by default).
    initial_soc : float
        SoC at ``t = 0`` [-], inside the window.
    round_trip_efficiency : float, optional
        Bus-to-bus round trip [-]; split as ``sqrt`` into charge and discharge. Default
        0.85 (NREL ATB, REFERENCE.md §4) when no one-way efficiencies are given.
    charge_efficiency, discharge_efficiency : float, optional
        One-way efficiencies [-]; give both or neither, not with ``round_trip_efficiency``.
    temp_c : float
        Cell temperature for ageing [°C] (constant unless :meth:`set_temperature_c`).
    ageing : bool
        Apply BLAST-Lite capacity fade (default True).
    ageing_params : BlastLfpParams
        Default: BLAST-Lite LFP/graphite 250 Ah prismatic (REFERENCE.md §4.1).
    ageing_window_s, ageing_window_efc : float
        Ageing window limits [s] and [EFC] (BLAST-Lite defaults 86 400 s and 1 EFC).
    name : str
    """

    def __init__(self, capacity_kwh: float, max_charge_kw: float, max_discharge_kw: float, *,
                 soc_min: float = 0.0, soc_max: float = 1.0, initial_soc: float = 0.5,
                 round_trip_efficiency: float | None = None,
                 charge_efficiency: float | None = None, discharge_efficiency: float | None = None,
                 temp_c: float = 25.0, ageing: bool = True,
                 ageing_params: BlastLfpParams = LFP_GR_250AH_PRISMATIC_2019,
                 ageing_window_s: float = SECONDS_PER_DAY, ageing_window_efc: float = 1.0,
                 name: str = "battery"):
        self.name = name
        self.capacity_kwh = _check_range("capacity_kwh", capacity_kwh, 0.0, math.inf, lo_open=True)
        self.max_charge_kw = _check_range("max_charge_kw", max_charge_kw, 0.0, math.inf)
        self.max_discharge_kw = _check_range("max_discharge_kw", max_discharge_kw, 0.0, math.inf)
        self.soc_min = _check_range("soc_min", soc_min, 0.0, 1.0)
        self.soc_max = _check_range("soc_max", soc_max, 0.0, 1.0)
        if not self.soc_min < self.soc_max:
            raise ValueError(f"soc_min = {soc_min!r}, soc_max = {soc_max!r}: expected soc_min < soc_max")
        self.initial_soc = _check_range("initial_soc", initial_soc, self.soc_min, self.soc_max)
        if (charge_efficiency is None) != (discharge_efficiency is None):
            raise ValueError("give both charge_efficiency and discharge_efficiency, or neither")
        if charge_efficiency is not None:
            if round_trip_efficiency is not None:
                raise ValueError("give round_trip_efficiency or the one-way efficiencies, not both")
            self.charge_efficiency = _check_range("charge_efficiency", charge_efficiency, 0.0, 1.0, lo_open=True)
            self.discharge_efficiency = _check_range("discharge_efficiency", discharge_efficiency, 0.0, 1.0,
                                                     lo_open=True)
        else:
            rte = ROUND_TRIP_EFFICIENCY_ATB if round_trip_efficiency is None else round_trip_efficiency
            rte = _check_range("round_trip_efficiency", rte, 0.0, 1.0, lo_open=True)
            self.charge_efficiency, self.discharge_efficiency = (float(e) for e in split_round_trip_efficiency(rte))
        self.ageing = bool(ageing)
        self.ageing_params = ageing_params
        self.ageing_window_s = _check_range("ageing_window_s", ageing_window_s, 0.0, math.inf, lo_open=True)
        self.ageing_window_efc = _check_range("ageing_window_efc", ageing_window_efc, 0.0, math.inf, lo_open=True)
        self.temp_c = 0.0
        self.set_temperature_c(temp_c)

        self.nominal_capacity_j = self.capacity_kwh * J_PER_KWH
        self.max_charge_w = self.max_charge_kw * W_PER_KW
        self.max_discharge_w = self.max_discharge_kw * W_PER_KW

        self.capacity_j = self.nominal_capacity_j
        self.stored_j = self.initial_soc * self.capacity_j
        self.power_w = 0.0
        self.time_s = 0.0
        self.calendar_loss = 0.0
        self.cycle_loss = 0.0
        self.efc = 0.0
        self.energy_in_total_j = 0.0
        self.energy_out_total_j = 0.0
        self.conversion_loss_total_j = 0.0
        self.fade_loss_total_j = 0.0
        self.throughput_total_j = 0.0
        self.windows_closed = 0
        self.windows_outside_validity = 0
        self._open_window()

    # ------------------------------------------------------------ dispatchable API

    @property
    def soc(self) -> float:
        """State of charge [-], stored energy over the current (aged) capacity."""
        return self.stored_j / self.capacity_j

    @property
    def capacity_fraction(self) -> float:
        """Relative capacity q = 1 - calendar loss - cycle loss [-]."""
        return 1.0 - self.calendar_loss - self.cycle_loss

    def feasible_range(self, dt_s: float) -> tuple[float, float]:
        """Bus power range that keeps the SoC in its window over ``dt_s`` [W].

        Returns ``(min_power_w, max_power_w)`` with ``min <= 0 <= max``; negative =
        discharging. ``dt_s = 0`` gives the instantaneous (converter-only) limits.
        """
        dt = _check_range("dt_s", dt_s, 0.0, math.inf)
        lo, hi = power_limits_w(self.soc, dt, self.capacity_j, self.soc_min, self.soc_max,
                                self.max_charge_w, self.max_discharge_w,
                                self.charge_efficiency, self.discharge_efficiency)
        return float(lo), float(hi)

    def set_power(self, power_w: float, dt_s: float | None = None) -> None:
        """Hold ``power_w`` [W] (positive = charging) from now until the next :meth:`step`.

        Checked against ``feasible_range(dt_s)`` when the step length is given, else
        against the converter limits and the SoC bounds; :meth:`step` checks again over
        its actual length. Raises ``ValueError`` naming the value and the range.
        """
        p = float(power_w)
        lo, hi = self.feasible_range(0.0 if dt_s is None else dt_s)
        if not (math.isfinite(p) and lo <= p <= hi):
            over = "now" if dt_s is None else f"over dt_s = {dt_s!r} s"
            raise ValueError(f"{self.name}: power_w = {power_w!r} W is outside the feasible range "
                             f"[{lo!r}, {hi!r}] W {over} (positive = charging; soc = {self.soc:.6g})")
        self.power_w = p

    def step(self, dt_s: float) -> BatteryFlows:
        """Hold the setpoint for ``dt_s`` [s] and return the step's :class:`BatteryFlows`."""
        dt = _check_range("dt_s", dt_s, 0.0, math.inf, lo_open=True)
        lo, hi = self.feasible_range(dt)
        p = self.power_w
        if not lo <= p <= hi:
            raise ValueError(f"{self.name}: held power_w = {p!r} W is outside the feasible range "
                             f"[{lo!r}, {hi!r}] W over dt_s = {dt!r} s (soc = {self.soc:.6g}); "
                             "set a new setpoint with set_power(power_w, dt_s)")
        stored_w = float(stored_power_w(p, self.charge_efficiency, self.discharge_efficiency))
        loss_w = float(conversion_loss_power_w(p, self.charge_efficiency, self.discharge_efficiency))
        stored_change_j = stored_w * dt
        energy_in_j = p * dt if p > 0.0 else 0.0
        energy_out_j = -p * dt if p < 0.0 else 0.0
        conversion_loss_j = loss_w * dt
        throughput_j = abs(stored_change_j)

        soc0 = self.soc
        self.stored_j += stored_change_j
        self.time_s += dt
        self.energy_in_total_j += energy_in_j
        self.energy_out_total_j += energy_out_j
        self.throughput_total_j += throughput_j
        self.efc += throughput_j / (2.0 * self.nominal_capacity_j)
        fade_loss_j = 0.0
        if self.ageing:
            self._accumulate(soc0, self.soc, stored_w, throughput_j, dt)
            if self._w_dt_s >= self.ageing_window_s or self._w_efc > self.ageing_window_efc:
                fade_loss_j = self._close_window()
        return self._flows(energy_in_j, energy_out_j, stored_change_j - fade_loss_j, throughput_j,
                           conversion_loss_j, fade_loss_j, p, dt)

    def close_ageing_window(self) -> BatteryFlows:
        """Apply the open window's ageing now (e.g. at the end of a run).

        Returns the flows of this zero-length step: no bus energy, the fade loss and the
        matching drop in stored energy (add it to the energy balance like a step).
        """
        fade_loss_j = self._close_window() if self.ageing else 0.0
        return self._flows(0.0, 0.0, -fade_loss_j, 0.0, 0.0, fade_loss_j, self.power_w, 0.0)

    def _flows(self, energy_in_j, energy_out_j, stored_change_j, throughput_j, conversion_loss_j, fade_loss_j,
               power_w, dt_s) -> BatteryFlows:
        loss_j = conversion_loss_j + fade_loss_j
        self.conversion_loss_total_j += conversion_loss_j
        self.fade_loss_total_j += fade_loss_j
        flows = BatteryFlows(energy_in_j=energy_in_j, energy_out_j=energy_out_j, loss_j=loss_j,
                             stored_change_j=stored_change_j, soc=self.soc, throughput_j=throughput_j,
                             capacity_fraction=self.capacity_fraction, conversion_loss_j=conversion_loss_j,
                             fade_loss_j=fade_loss_j, power_w=power_w, dt_s=dt_s)
        check_energy_balance(flows)
        return flows

    def set_temperature_c(self, temp_c: float) -> None:
        """Cell temperature for ageing from now on [°C]."""
        self.temp_c = _check_range("temp_c", temp_c, -KELVIN_AT_0_C, math.inf, lo_open=True)

    def config(self) -> dict:
        """Static parameters, units in the keys."""
        c_charge = self.max_charge_kw / self.capacity_kwh
        c_discharge = self.max_discharge_kw / self.capacity_kwh
        v = LFP_GR_250AH_PRISMATIC_2019_VALIDITY
        return {
            "name": self.name,
            "sign_convention": "power_w > 0: charging from the site bus (consumption)",
            "capacity_kwh": self.capacity_kwh,
            "max_charge_kw": self.max_charge_kw,
            "max_discharge_kw": self.max_discharge_kw,
            "soc_min": self.soc_min,
            "soc_max": self.soc_max,
            "initial_soc": self.initial_soc,
            "charge_efficiency": self.charge_efficiency,
            "discharge_efficiency": self.discharge_efficiency,
            "round_trip_efficiency": self.charge_efficiency * self.discharge_efficiency,
            "ageing": self.ageing,
            "ageing_model": self.ageing_params.source,
            "ageing_window_s": self.ageing_window_s,
            "ageing_window_efc": self.ageing_window_efc,
            "c_rates_within_ageing_validity": (c_charge <= v["max_charge_c_rate_per_h"]
                                               and c_discharge <= v["max_discharge_c_rate_per_h"]),
        }

    def state(self) -> dict:
        """Current state, units in the keys; ``*_total_j`` are cumulative since t = 0."""
        return {
            "time_s": self.time_s,
            "power_w": self.power_w,
            "soc": self.soc,
            "stored_energy_j": self.stored_j,
            "capacity_j": self.capacity_j,
            "capacity_fraction": self.capacity_fraction,
            "calendar_loss": self.calendar_loss,
            "cycle_loss": self.cycle_loss,
            "efc": self.efc,
            "temp_c": self.temp_c,
            "energy_in_total_j": self.energy_in_total_j,
            "energy_out_total_j": self.energy_out_total_j,
            "conversion_loss_total_j": self.conversion_loss_total_j,
            "fade_loss_total_j": self.fade_loss_total_j,
            "throughput_total_j": self.throughput_total_j,
            "ageing_windows_closed": self.windows_closed,
            "ageing_windows_outside_validity": self.windows_outside_validity,
        }

    # ------------------------------------------------------------------ ageing

    def _open_window(self) -> None:
        self._w_dt_s = 0.0
        self._w_kcal_dt = 0.0  # integral of k_cal dt [day^-pcal s]
        self._w_tfactor_dt = 0.0  # integral of exp(p7/T) + exp(-p8/T) dt [s]
        self._w_temp_c_dt = 0.0
        self._w_crate_dt = 0.0  # integral of |C-rate| dt [s/h]
        self._w_efc = 0.0
        self._w_soc_min = self._w_soc_max = self.soc

    def _accumulate(self, soc0: float, soc1: float, stored_w: float, throughput_j: float, dt: float) -> None:
        """Add one constant-power step to the open window (BLAST-Lite stressors, §8.1)."""
        temp_k = self.temp_c + KELVIN_AT_0_C
        ua0 = anode_potential_v(min(max(soc0, 0.0), 1.0))  # scalar fast path (no per-tick arrays)
        ua1 = anode_potential_v(min(max(soc1, 0.0), 1.0))
        # k_cal at the step's two SoC samples, trapezoid in time (BLAST: np.trapz over samples)
        k0 = lfp_calendar_rate(temp_k, ua0, self.ageing_params)
        k1 = lfp_calendar_rate(temp_k, ua1, self.ageing_params)
        self._w_kcal_dt += 0.5 * float(k0 + k1) * dt
        self._w_tfactor_dt += float(lfp_cycle_temperature_factor(temp_k, self.ageing_params)) * dt
        self._w_temp_c_dt += self.temp_c * dt
        # C-rate on the nominal-capacity basis (BLAST: |dSoC/dt_h| * q); storage-level
        # rates below 0.01/h in SoC of the current capacity are zeroed, as in BLAST.
        dsoc_per_h = abs(stored_w) * SECONDS_PER_HOUR / self.capacity_j
        if dsoc_per_h >= _C_RATE_FLOOR_PER_H:
            self._w_crate_dt += abs(stored_w) * SECONDS_PER_HOUR / self.nominal_capacity_j * dt
        self._w_efc += throughput_j / (2.0 * self.nominal_capacity_j)
        self._w_soc_min = min(self._w_soc_min, soc0, soc1)
        self._w_soc_max = max(self._w_soc_max, soc0, soc1)
        self._w_dt_s += dt

    def _close_window(self) -> float:
        """Apply the window's time-averaged rates to the loss states; return the fade loss [J].

        SoC is kept: stored energy shrinks with the capacity, ``soc * (C_old - C_new)``.
        """
        dt = self._w_dt_s
        if dt <= 0.0:
            return 0.0
        soc = self.soc
        capacity_before_j = self.capacity_j
        p = self.ageing_params
        kcal = self._w_kcal_dt / dt
        dod = self._w_soc_max - self._w_soc_min
        c_rate_per_h = self._w_crate_dt / dt
        kcyc = (p.p4 + p.p5 * dod + p.p6 * c_rate_per_h) * (self._w_tfactor_dt / dt)
        self.calendar_loss = float(power_law_state_step(self.calendar_loss, dt / SECONDS_PER_DAY, kcal, p.pcal))
        self.cycle_loss = float(power_law_state_step(self.cycle_loss, self._w_efc, kcyc, p.pcyc))
        if not self.capacity_fraction > 0.0:
            raise ValueError(f"{self.name}: capacity fraction {self.capacity_fraction!r} after ageing: "
                             "expected > 0 (the ageing model is far outside its range)")
        self.capacity_j = self.capacity_fraction * self.nominal_capacity_j
        self.stored_j = soc * self.capacity_j
        fade_loss_j = soc * (capacity_before_j - self.capacity_j)
        if self._w_efc > 0.0:
            v = LFP_GR_250AH_PRISMATIC_2019_VALIDITY
            t_mean_c = self._w_temp_c_dt / dt
            if not (v["cycling_temp_c"][0] <= t_mean_c <= v["cycling_temp_c"][1] and v["dod"][0] <= dod):
                self.windows_outside_validity += 1
        self.windows_closed += 1
        self._open_window()
        return fade_loss_j
