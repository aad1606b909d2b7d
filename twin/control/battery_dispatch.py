"""Battery dispatch: one setpoint per tick from FFR, FCR-D, peak shaving, ramp smoothing and recharge.

A controller over the pure laws of :mod:`twin.physics.battery` (priority FFR > FCR-D >
peak shaving > ramp smoothing > recharge, :func:`~twin.physics.battery.combine_setpoints_w`).
FCR-D upwards adds a discharge of ``fraction(f) * fcr_d_reserve`` on top of what the
other services ask, with ``fraction`` the droop of
:func:`twin.facility.frequency.fcr_d_up_fraction` supplied by the caller (the
dispatcher never reads the grid itself).
It keeps only what a real controller would: the grid import it achieved last tick
and the power it held when an FFR activation began. Time is whatever its caller
passes (simulation seconds); it never reads a clock.

Sign convention: positive battery power charges from the site bus (consumption).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.physics.battery import combine_setpoints_w, ramp_smoothing_power_w


@dataclass(frozen=True)
class DispatchConfig:
    """Services the battery provides.

    Attributes
    ----------
    import_limit_w : float
        Peak-shaving threshold on grid import [W]; ``inf``: no peak shaving.
    max_ramp_w_per_s : float
        Grid-import ramp limit [W/s]; ``nan``: no ramp smoothing.
    ffr_reserve_w : float
        Import reduction delivered during an FFR activation [W], >= 0.
    fcr_d_reserve_w : float
        FCR-D upwards capacity: import reduction at full activation (49.5 Hz) [W], >= 0.
    recharge_w : float
        Charging power used below ``target_soc`` when nothing else asks [W], >= 0.
    target_soc : float
        State of charge the recharge returns to [-].
    """

    import_limit_w: float = math.inf
    max_ramp_w_per_s: float = math.nan
    ffr_reserve_w: float = 0.0
    fcr_d_reserve_w: float = 0.0
    recharge_w: float = 0.0
    target_soc: float = 0.5

    def __post_init__(self):
        if not self.ffr_reserve_w >= 0:
            raise ValueError(f"ffr_reserve_w = {self.ffr_reserve_w!r}: expected >= 0 W")
        if not self.fcr_d_reserve_w >= 0:
            raise ValueError(f"fcr_d_reserve_w = {self.fcr_d_reserve_w!r}: expected >= 0 W")
        if not self.recharge_w >= 0:
            raise ValueError(f"recharge_w = {self.recharge_w!r}: expected >= 0 W")
        if not (math.isnan(self.max_ramp_w_per_s) or self.max_ramp_w_per_s > 0):
            raise ValueError(f"max_ramp_w_per_s = {self.max_ramp_w_per_s!r}: expected > 0 W/s or nan (off)")
        if not 0.0 <= self.target_soc <= 1.0:
            raise ValueError(f"target_soc = {self.target_soc!r}: expected in [0, 1]")


class BatteryDispatcher:
    """Setpoints tick by tick.

    Parameters
    ----------
    config : DispatchConfig
    ffr_windows_s : array of shape (n, 2)
        ``[start, end)`` of each FFR support period [s] (trigger to support end).
    """

    def __init__(self, config: DispatchConfig, ffr_windows_s=()):
        self.config = config
        w = np.asarray(ffr_windows_s, dtype=float).reshape(-1, 2)
        if w.size and np.any(w[:, 1] < w[:, 0]):
            raise ValueError("ffr_windows_s: every window must end at or after its start")
        self.ffr_windows_s = w
        self._prev_grid_w: float | None = None
        self._baseline_w = 0.0
        self._last_w = 0.0
        self._active = -1  # index of the FFR window in force, -1: none

    def _ffr_window(self, t_s: float) -> int:
        w = self.ffr_windows_s
        if not w.size:
            return -1
        i = int(np.searchsorted(w[:, 0], t_s, side="right")) - 1
        return i if i >= 0 and t_s < w[i, 1] else -1

    def setpoint_w(self, t_s: float, dt_s: float, site_load_w: float, soc: float,
                   min_power_w: float, max_power_w: float, fcr_d_fraction: float = 0.0) -> float:
        """Battery setpoint for the tick [t_s, t_s + dt_s) [W], within the feasible range.

        ``t_s`` is the tick's start; an FFR window counts from the tick it starts in.
        ``fcr_d_fraction`` is the FCR-D upwards activation in [0, 1] for this tick.
        """
        if not 0.0 <= fcr_d_fraction <= 1.0:
            raise ValueError(f"fcr_d_fraction = {fcr_d_fraction!r}: expected in [0, 1]")
        cfg = self.config
        # no FFR commitment, no FFR windows: the battery is free for the other services
        i = self._ffr_window(t_s + 0.5 * dt_s) if self.ffr_windows_s.size and cfg.ffr_reserve_w > 0 else -1
        if i >= 0 and i != self._active:
            self._baseline_w = self._last_w  # hold the pre-activation power as the baseline
        self._active = i
        ffr_w = self._baseline_w - cfg.ffr_reserve_w if i >= 0 else math.nan
        recharge_w = cfg.recharge_w if soc < cfg.target_soc else 0.0
        ramp_w = math.nan
        if not math.isnan(cfg.max_ramp_w_per_s) and self._prev_grid_w is not None:
            ramp_w = float(ramp_smoothing_power_w(site_load_w, self._prev_grid_w, dt_s, cfg.max_ramp_w_per_s,
                                                  recharge_w))
        sp = float(combine_setpoints_w(min_power_w, max_power_w, site_load_w, import_limit_w=cfg.import_limit_w,
                                       ramp_smoothing_w=ramp_w, recharge_power_w=recharge_w, ffr_w=ffr_w,
                                       ffr_reserve_w=cfg.ffr_reserve_w))
        if i < 0 and cfg.fcr_d_reserve_w > 0.0 and fcr_d_fraction > 0.0:
            # FCR-D rides on top of the lower-priority services; FFR, when active, already rules
            sp = min(max(sp - fcr_d_fraction * cfg.fcr_d_reserve_w, min_power_w), max_power_w)
        self._last_w = sp
        return sp

    def achieved(self, grid_import_w: float) -> None:
        """Tell the dispatcher the grid import achieved over the last tick [W]."""
        self._prev_grid_w = grid_import_w
