"""The protocols through which controllers see a plant, and the plant's errors.

Controllers in ``twin/control/`` import nothing from ``facility/``, ``sim/`` or
``hw_bridge/``: they receive an object satisfying :class:`GpuPlant` (the twin's fleet,
the in-package fake, or NVML on real hardware) and :class:`FacilitySensors`.
Arrays are indexed by cohort (GPUs that share host, job and setpoint); per-GPU
control is the cohort-size-1 case. Every power is per GPU unless the name says
otherwise. Nothing here reads a clock: the plant answers "now" in whatever time its
owner keeps (SimPy's ``env.now`` in the twin, the real-time environment live).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class PlantError(RuntimeError):
    """A plant could not do what a controller asked."""


class CapOutOfRangeError(PlantError, ValueError):
    """A requested power cap lies outside the device's power-limit range."""


@runtime_checkable
class GpuPlant(Protocol):
    """Read and actuate GPU cohorts."""

    @property
    def n_cohorts(self) -> int:
        """Number of cohorts."""

    def power_limits_w(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) configurable power limit per cohort [W per GPU]."""

    def read_power_w(self) -> np.ndarray:
        """Board power per cohort, now [W per GPU]."""

    def read_power_cap_w(self) -> np.ndarray:
        """Power cap in force per cohort [W per GPU]."""

    def set_power_cap_w(self, cohorts: np.ndarray, cap_w: np.ndarray) -> None:
        """Set the power cap of ``cohorts`` to ``cap_w`` [W per GPU].

        Raises :class:`CapOutOfRangeError` (naming the cohort, the value and the
        range) if any cap is outside :meth:`power_limits_w`; then nothing is set.
        """


@runtime_checkable
class FacilitySensors(Protocol):
    """Facility-level readings a cluster controller may use (the meter's view)."""

    def it_power_w(self) -> float:
        """IT power, now [W]."""

    def facility_power_w(self) -> float:
        """Power at the facility meter, now [W]."""


def check_caps_in_range(cohorts: np.ndarray, cap_w: np.ndarray, min_w: np.ndarray, max_w: np.ndarray) -> None:
    """Raise :class:`CapOutOfRangeError` if any requested cap is outside its cohort's range."""
    cohorts = np.atleast_1d(np.asarray(cohorts))
    cap_w = np.broadcast_to(np.asarray(cap_w, dtype=float), cohorts.shape)
    lo, hi = np.asarray(min_w)[cohorts], np.asarray(max_w)[cohorts]
    bad = np.flatnonzero(~((cap_w >= lo) & (cap_w <= hi)))
    if bad.size:
        i = bad[0]
        raise CapOutOfRangeError(
            f"power cap {cap_w[i]:g} W for cohort {int(cohorts[i])} is outside its power-limit range "
            f"{lo[i]:g}-{hi[i]:g} W ({bad.size} of {cap_w.size} requested caps out of range; none set)"
        )
