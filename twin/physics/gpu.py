"""GPU board power: device profiles and the simple cap-limited model.

All functions are pure and vectorised: every argument may be a scalar or a numpy
array (broadcast together). Units are SI and carried in the names.

The model here is deliberately simple (issue #2): board power demanded by a job is
``idle + util * (max_limit - idle)``, the power cap clips it, and the board follows
the clipped target with a first-order lag. The calibrated power-vs-cap-and-clock
model (E1 data) replaces :func:`demand_power_w` later without changing its callers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GpuProfile:
    """Static facts about one GPU model.

    Attributes
    ----------
    name : str
        Model key used in scenario files.
    min_limit_w, max_limit_w : float
        Configurable power-limit range [W]. ``max_limit_w`` is the default limit (TDP).
    idle_w : float
        Board power with no job [W].
    power_time_constant_s : float
        Time constant of the first-order lag of board power toward its target [s].
    calibrated : bool
        True only where the numbers were fitted to or read from measurements.
    source : str
        Where each number comes from.
    """

    name: str
    min_limit_w: float
    max_limit_w: float
    idle_w: float
    power_time_constant_s: float
    calibrated: bool
    source: str


# Lag time constant: the GridPilot paper (seed 004, §5.1 E2) reports a median 18-29 ms
# settling to within 5 % of a new cap on the V100; a first-order lag settles to 5 % in
# 3 tau, so tau = 21 ms / 3 = 7 ms. Used for every model until the E2 fit (issue #3)
# brings separate step-up / step-down dynamics.
_TAU_E2_S = 0.007

GPU_PROFILES: dict[str, GpuProfile] = {
    p.name: p
    for p in (
        GpuProfile(
            "V100-SXM2-32GB", 150.0, 300.0, 56.58, _TAU_E2_S, True,
            "limits and idle: REFERENCE.md §1.1 (nvidia-smi -q dump, NVIDIA/nvidia-docker#1076; "
            "idle is a single sample); tau: seed 004 §5.1 E2",
        ),
        GpuProfile(
            "V100-SXM2-16GB", 150.0, 300.0, 56.58, _TAU_E2_S, False,
            "assumed equal to the 32 GB part (REFERENCE.md §1.1); Marconi100's GPU (REFERENCE.md §7)",
        ),
        GpuProfile(
            "A100-SXM4-40GB", 100.0, 400.0, 56.58, _TAU_E2_S, False,
            "limits: REFERENCE.md §1.1 (NVIDIA/DCGM#152 dump); idle unsourced "
            "(REFERENCE.md known gaps): V100 value assumed",
        ),
        GpuProfile(
            "H100-SXM", 200.0, 700.0, 78.8, _TAU_E2_S, False,
            "limits: REFERENCE.md §1.1 (stackhpc/ansible-slurm-appliance#975); "
            "idle 78.8 W: REFERENCE.md §8.7 (same dump, single reading)",
        ),
        GpuProfile(
            "H200-SXM", 200.0, 700.0, 80.3, _TAU_E2_S, False,
            "TDP 700 W: REFERENCE.md §1.1 (secondary); idle 80.3 W: REFERENCE.md §8.7 "
            "(secondary); min limit unsourced: H100's 200 W assumed",
        ),
    )
}


def demand_power_w(util, idle_w, max_limit_w):
    """Board power a job would draw with no cap [W].

    Parameters
    ----------
    util : float or array
        Fraction of the dynamic power range the job uses [-], 0 (idle) to 1.
    idle_w, max_limit_w : float or array
        Idle board power and maximum power limit (TDP) [W].

    Returns
    -------
    float or array
        ``idle_w + util * (max_limit_w - idle_w)`` [W].
    """
    return idle_w + util * (max_limit_w - idle_w)


def capped_power_w(demand_w, cap_w):
    """Board power target under a power cap: ``min(demand, cap)`` [W]."""
    return np.minimum(demand_w, cap_w)


def lag_step(power_w, target_w, dt_s, tau_s):
    """Advance a first-order lag toward a constant target, in closed form.

    ``dp/dt = (target - p) / tau`` integrated exactly over ``dt_s``.

    Parameters
    ----------
    power_w : float or array
        Power at the start of the interval [W].
    target_w : float or array
        Target, constant over the interval [W].
    dt_s : float
        Interval length [s], >= 0.
    tau_s : float or array
        Time constant [s], > 0.

    Returns
    -------
    power_end_w : float or array
        Power at the end of the interval [W].
    energy_j : float or array
        Exact energy drawn over the interval [J]:
        ``target*dt + (p0 - target) * tau * (1 - exp(-dt/tau))``.
    """
    decay = np.exp(-dt_s / tau_s)
    gap_w = power_w - target_w
    power_end_w = target_w + gap_w * decay
    energy_j = target_w * dt_s + gap_w * tau_s * (1.0 - decay)
    return power_end_w, energy_j
