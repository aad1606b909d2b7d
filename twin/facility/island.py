"""The twin's model of the safety island: when each cohort's new cap is written and settled.

The island (seed 004 §2, §3.2) is one real-time C thread per host: it receives the TSO
trigger over UDP, looks the level up in the island table (:mod:`twin.control.island_table`)
and writes the new cap to every GPU of its host through NVML; board power then follows
the plant. The end-to-end time composes as

``t_settled = t_trigger + t_rx + t_lookup + sum(t_write over the GPUs written so far) + t_settle``

with these modelling choices (every constant and its origin: ``docs/parameters.md``):

* **Serial writes within a host, hosts in parallel.** The island is one SCHED_FIFO thread
  and an NVML set-limit call blocks, so a host's GPUs are written one after another, in
  cohort-index order (E7 agrees: its end-to-end time is the sum of the three per-GPU
  times plus 0.53 ms). Every host runs its own island and receives the trigger itself:
  one ``t_rx`` and ``t_lookup`` draw per host.
* **One latency draw per cohort.** The hosts of a multi-host cohort act in lock-step
  (the spread across hosts is not modelled); with one cohort per node, as the engine
  builds them today, this is exact. Cohorts sharing a host (``host_of_cohort``, e.g.
  per-GPU cohorts) are written serially by that host's island.
* **Settle from the plant.** After its last GPU is written a cohort's board power follows
  the fitted asymmetric lag (:func:`twin.physics.gpu.board_power_step`) toward the new
  target; it is within ``band`` of the step after ``tau * ln(1 / band)`` (``tau_down``
  for a decrease). GPUs written earlier have decayed further, so the cohort is settled
  no later than that: the bound is reported.

Latency components are random with stated bounded distributions, drawn from a
``numpy.random.Generator`` the caller seeds; nothing reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from twin.control.island_table import IslandTable

__all__ = [
    "Uniform",
    "Triangular",
    "TruncatedNormal",
    "IslandLatencyModel",
    "NVML_ISLAND",
    "NVIDIA_SMI_E7",
    "SETTLE_BAND",
    "lag_settle_time_s",
    "serial_write_done_s",
    "IslandActivation",
    "SafetyIsland",
]

#: Settling band: within 5 % of the step (seed 004 §2: "95 % of the new target").
SETTLE_BAND = 0.05


@dataclass(frozen=True)
class Uniform:
    """Uniform on ``[low_s, high_s]`` [s]."""

    low_s: float
    high_s: float

    def __post_init__(self):
        if not 0.0 <= self.low_s <= self.high_s:
            raise ValueError(f"Uniform({self.low_s!r}, {self.high_s!r}): expected 0 <= low_s <= high_s")

    @property
    def bounds_s(self) -> tuple[float, float]:
        return self.low_s, self.high_s

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        return rng.uniform(self.low_s, self.high_s, size)


@dataclass(frozen=True)
class Triangular:
    """Triangular on ``[low_s, high_s]`` with its mode at ``mode_s`` [s]."""

    low_s: float
    mode_s: float
    high_s: float

    def __post_init__(self):
        if not (0.0 <= self.low_s <= self.mode_s <= self.high_s and self.low_s < self.high_s):
            raise ValueError(f"Triangular({self.low_s!r}, {self.mode_s!r}, {self.high_s!r}): expected "
                             "0 <= low_s <= mode_s <= high_s, low_s < high_s")

    @property
    def bounds_s(self) -> tuple[float, float]:
        return self.low_s, self.high_s

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        return rng.triangular(self.low_s, self.mode_s, self.high_s, size)


@dataclass(frozen=True)
class TruncatedNormal:
    """Normal(``mean_s``, ``std_s``) truncated to ``[low_s, high_s]`` (by rejection) [s]."""

    mean_s: float
    std_s: float
    low_s: float
    high_s: float

    def __post_init__(self):
        if not (0.0 <= self.low_s <= self.mean_s <= self.high_s and self.std_s > 0.0):
            raise ValueError(f"TruncatedNormal({self.mean_s!r}, {self.std_s!r}, {self.low_s!r}, "
                             f"{self.high_s!r}): expected 0 <= low_s <= mean_s <= high_s, std_s > 0")

    @property
    def bounds_s(self) -> tuple[float, float]:
        return self.low_s, self.high_s

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        n = int(np.prod(size))
        out = np.empty(0)
        while out.size < n:  # acceptance >= 68 % when the mean lies inside the bounds
            x = rng.normal(self.mean_s, self.std_s, 2 * (n - out.size) + 8)
            out = np.r_[out, x[(x >= self.low_s) & (x <= self.high_s)]]
        return out[:n].reshape(size)


@dataclass(frozen=True)
class IslandLatencyModel:
    """Distributions of the island's latency components (origins: ``docs/parameters.md``).

    Attributes
    ----------
    name : str
        Short label (appears in reports).
    trigger_rx : distribution
        UDP trigger received and parsed, per host [s].
    lookup : distribution
        Table lookup, per host [s].
    cap_write : distribution
        One GPU's cap write, per GPU [s].
    band : float
        Settling band, fraction of the step (-).
    """

    name: str
    trigger_rx: Uniform | Triangular | TruncatedNormal
    lookup: Uniform | Triangular | TruncatedNormal
    cap_write: Uniform | Triangular | TruncatedNormal
    band: float = SETTLE_BAND

    def __post_init__(self):
        if not 0.0 < self.band < 1.0:
            raise ValueError(f"band = {self.band!r}: expected 0 < band < 1")

    def write_done_bounds_s(self, gpus_on_host: int) -> tuple[float, float]:
        """(min, max) time from trigger to the last cap write on a host with this many GPUs [s]."""
        lo = self.trigger_rx.bounds_s[0] + self.lookup.bounds_s[0] + gpus_on_host * self.cap_write.bounds_s[0]
        hi = self.trigger_rx.bounds_s[1] + self.lookup.bounds_s[1] + gpus_on_host * self.cap_write.bounds_s[1]
        return lo, hi


#: The C island writing through NVML directly (the default).
NVML_ISLAND = IslandLatencyModel(
    name="nvml-island",
    trigger_rx=Triangular(0.29e-3, 0.53e-3, 1.0e-3),  # E7 remainder min / median; paper §3.2 1 ms
    lookup=Uniform(1e-6, 10e-6),                      # paper §3.2 "µs"; bounds chosen
    cap_write=Uniform(1e-3, 5e-3),                    # paper §2/§3.2 worst case 5 ms [30]; low chosen
)
#: What E7 measured: one ``nvidia-smi -pl`` process per GPU (idle GPUs; data README caveat).
NVIDIA_SMI_E7 = IslandLatencyModel(
    name="nvidia-smi-e7",
    trigger_rx=Triangular(0.29e-3, 0.53e-3, 1.0e-3),
    lookup=Uniform(1e-6, 10e-6),
    cap_write=TruncatedNormal(32.27e-3, 0.91e-3, 29.1e-3, 34.7e-3),  # E7, 270 per-GPU call times
)


def lag_settle_time_s(power_w, target_w, dyn, band: float = SETTLE_BAND):
    """Time for the fitted lag to come within ``band`` of a step, from the write [s].

    ``tau * ln(1 / band)`` with ``tau = dyn.tau_down_s`` when ``target < power`` and
    ``dyn.tau_up_s`` when above, as :func:`twin.physics.gpu.board_power_step`; 0 where
    the target equals the power (nothing to settle). Scalars or arrays.
    """
    if not 0.0 < band < 1.0:
        raise ValueError(f"band = {band!r}: expected 0 < band < 1")
    gap_w = np.asarray(power_w, dtype=float) - np.asarray(target_w, dtype=float)
    tau_s = np.where(gap_w > 0.0, dyn.tau_down_s, dyn.tau_up_s)
    out = np.where(gap_w != 0.0, tau_s * math.log(1.0 / band), 0.0)
    return float(out) if out.ndim == 0 else out


def serial_write_done_s(start_s, write_s, host_of_cohort) -> np.ndarray:
    """When each cohort's last GPU is written, hosts writing their cohorts serially [s].

    Parameters
    ----------
    start_s : array, shape (n,)
        Time each cohort's host starts writing (trigger + receive + lookup) [s]; equal
        for cohorts of one host.
    write_s : array, shape (n,)
        Time to write all GPUs of the cohort on its host [s].
    host_of_cohort : array of int, shape (n,)
        Host of each cohort; a host writes its cohorts in index order.

    Returns
    -------
    numpy.ndarray
        ``start + cumulative write time within the host, up to and including the cohort``.
    """
    start_s = np.asarray(start_s, dtype=float)
    write_s = np.asarray(write_s, dtype=float)
    host = np.asarray(host_of_cohort)
    order = np.lexsort((np.arange(host.size), host))  # by host, then cohort index
    w = write_s[order]
    cum = np.cumsum(w)
    first = np.r_[True, host[order][1:] != host[order][:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(host.size), 0))
    before = np.r_[0.0, cum][group_start]  # cumulative sum before the host's first cohort
    out = np.empty_like(w)
    out[order] = start_s[order] + cum - before
    return out


@dataclass(frozen=True)
class IslandActivation:
    """One island response (times [s] on the caller's clock, arrays per cohort)."""

    trigger_s: float
    level_hz: float
    kind: str
    caps_w: np.ndarray
    received_s: np.ndarray
    looked_up_s: np.ndarray
    cap_written_s: np.ndarray
    settled_s: np.ndarray
    components_s: dict = field(default_factory=dict)

    @property
    def caps_written_latency_s(self) -> float:
        """Trigger to the last cap written anywhere [s]."""
        return float(np.max(self.cap_written_s) - self.trigger_s)

    @property
    def latency_s(self) -> float:
        """Trigger to the last cohort settled [s] (NaN if power was not given)."""
        return float(np.max(self.settled_s) - self.trigger_s)


class SafetyIsland:
    """The islands of a facility (one per host), reading one island table.

    Parameters
    ----------
    table : IslandTable
        Caps per trigger level and cohort (``table.n_cohorts`` cohorts).
    gpus_per_host : array of int, shape (n_cohorts,)
        GPUs of the cohort on each of its hosts (``gpu_count / host_count``), >= 1.
    host_of_cohort : array of int, optional
        Host id per cohort where cohorts share a host; default every cohort on its own hosts.
    model : IslandLatencyModel
        Latency distributions (default :data:`NVML_ISLAND`).
    seed : int
        Seed of the island's own random generator (activations are reproducible per seed).
    """

    def __init__(self, table: IslandTable, gpus_per_host, host_of_cohort=None,
                 model: IslandLatencyModel = NVML_ISLAND, seed: int = 0):
        g = np.asarray(gpus_per_host)
        if g.shape != (table.n_cohorts,) or np.any(g < 1) or np.any(g != np.round(g)):
            raise ValueError(f"gpus_per_host = {gpus_per_host!r}: expected {table.n_cohorts} integers >= 1 "
                             "(one per table cohort)")
        self.gpus_per_host = g.astype(np.int64)
        h = np.arange(table.n_cohorts) if host_of_cohort is None else np.asarray(host_of_cohort)
        if h.shape != (table.n_cohorts,):
            raise ValueError(f"host_of_cohort has shape {h.shape}; expected ({table.n_cohorts},)")
        self.host_of_cohort = h
        self.table = table
        self.model = model
        self.rng = np.random.default_rng(seed)

    def activate(self, trigger_s: float, level_hz: float, *, kind: str = "trigger", power_w=None,
                 target_w=None, dyn=None, now_epoch_s: float | None = None) -> IslandActivation:
        """The island's response to a trigger at ``level_hz`` (a row of the table).

        Parameters
        ----------
        trigger_s : float
            Time the trigger is sent [s].
        level_hz : float
            Level of the table row to apply (``kind`` ``"trigger"`` or ``"release"``).
        power_w, target_w : array, optional
            Board power per GPU at the write and the power the new cap leads to, per
            cohort [W]; with ``dyn`` (``tau_down_s``, ``tau_up_s``) they give the settle.
            Without them ``settled_s`` is NaN.
        now_epoch_s : float, optional
            Wall time of the trigger [s since 1970 UTC]; if given, a stale table is refused.
        """
        if now_epoch_s is not None:
            self.table.check_fresh(now_epoch_s)
        caps_w = np.asarray(self.table.row(level_hz, kind), dtype=float)
        n = self.table.n_cohorts
        hosts, inv = np.unique(self.host_of_cohort, return_inverse=True)
        rx_s = self.model.trigger_rx.sample(self.rng, hosts.size)[inv]
        lookup_s = self.model.lookup.sample(self.rng, hosts.size)[inv]
        per_gpu = self.model.cap_write.sample(self.rng, int(self.gpus_per_host.sum()))
        write_s = np.add.reduceat(per_gpu, np.r_[0, np.cumsum(self.gpus_per_host)[:-1]])
        received_s = trigger_s + rx_s
        looked_up_s = received_s + lookup_s
        written_s = serial_write_done_s(looked_up_s, write_s, self.host_of_cohort)
        if power_w is not None and target_w is not None and dyn is not None:
            settle_s = np.broadcast_to(lag_settle_time_s(power_w, target_w, dyn, self.model.band), (n,))
        else:
            settle_s = np.full(n, np.nan)
        return IslandActivation(
            trigger_s=float(trigger_s), level_hz=float(level_hz), kind=kind, caps_w=caps_w,
            received_s=received_s, looked_up_s=looked_up_s, cap_written_s=written_s,
            settled_s=written_s + settle_s,
            components_s={"trigger_rx_s": rx_s, "lookup_s": lookup_s, "cap_write_s": write_s,
                           "settle_s": np.asarray(settle_s, dtype=float)})
