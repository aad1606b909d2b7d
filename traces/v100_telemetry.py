"""Readers for the GridPilot V100 telemetry campaign (``../shared/data/v100_telemetry``).

The files are measured data that this project did not produce (GridPilot v1.0
reproducibility kit, D. Constantinescu et al., EPFL EcoCloud, CC BY 4.0); they are never
copied into this repository. Each reader parses one file into our column names and
units and returns ``(data, report)``: nothing is dropped silently, every skipped line is
counted under a reason.

Known quirks (see the data README): NVML board power refreshes about every 20 ms while
the sampler runs at 100-200 Hz, so values repeat (sample-and-hold; nothing here removes
repeats); some files hold lines where two writers interleaved (3 to 25 fields instead
of 13), rows from other GPUs, and fragments whose time stamp is out of sequence.
The ``gpus`` entry of a ``*.meta.json`` file does not always name the GPU that ran the
workload (E3), so the GPU to keep is always an explicit argument.
"""

from __future__ import annotations

import bisect
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd

__all__ = [
    "SKIP_REASONS",
    "TelemetryReport",
    "read_v100_telemetry",
    "read_e1_parsed_results",
    "read_e2_step_plan",
]

#: Header names in the files -> our names. Names not listed are kept as they are.
VARIABLE_MAP = MappingProxyType({"t": "t_s"})
#: Columns that must hold a number on every kept row.
REQUIRED_COLUMNS = ("t_s", "gpu_index", "power_w")
#: Columns parsed as hexadecimal bit masks (NVML clock-throttle reasons).
HEX_COLUMNS = ("throttle_reasons",)

#: Reasons a data line is skipped, in report order.
SKIP_REASONS = (
    "blank",              # empty line
    "field_count",        # not as many fields as the header (interleaved writers)
    "unparsable",         # a field that should be a number is not one
    "missing_required",   # t_s, gpu_index or power_w empty
    "other_gpu",          # a well-formed row of another GPU
    "time_out_of_order",  # off the longest strictly increasing run of t_s for this GPU
)


@dataclass(frozen=True)
class TelemetryReport:
    """What :func:`read_v100_telemetry` kept and skipped.

    Attributes
    ----------
    path : str
        File read.
    gpu_index : int
        GPU whose rows were kept.
    lines_total : int
        Data lines in the file (header excluded).
    rows_kept : int
        Rows returned.
    skipped : Mapping[str, int]
        Skipped lines by reason (every key of :data:`SKIP_REASONS`, zeros included).
    other_gpus : Mapping[int, int]
        Well-formed rows per other GPU index (all counted under ``other_gpu``).
    """

    path: str
    gpu_index: int
    lines_total: int
    rows_kept: int
    skipped: Mapping[str, int]
    other_gpus: Mapping[int, int] = field(default_factory=dict)

    @property
    def skipped_total(self) -> int:
        return int(sum(self.skipped.values()))

    def to_dict(self) -> dict:
        return {"path": self.path, "gpu_index": self.gpu_index, "lines_total": self.lines_total,
                "rows_kept": self.rows_kept, "skipped": dict(self.skipped),
                "other_gpus": {str(k): v for k, v in self.other_gpus.items()}}


def _longest_increasing(t: np.ndarray) -> np.ndarray:
    """Boolean mask of one longest strictly increasing subsequence of ``t`` (O(n log n))."""
    n = len(t)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    tails_val: list[float] = []  # smallest tail value of an increasing run of each length
    tails_idx: list[int] = []
    prev = np.full(n, -1, dtype=np.int64)
    for i, v in enumerate(t.tolist()):
        j = bisect.bisect_left(tails_val, v)
        if j > 0:
            prev[i] = tails_idx[j - 1]
        if j == len(tails_val):
            tails_val.append(v)
            tails_idx.append(i)
        else:
            tails_val[j] = v
            tails_idx[j] = i
    i = tails_idx[-1]
    while i >= 0:
        keep[i] = True
        i = prev[i]
    return keep


def read_v100_telemetry(path: str | os.PathLike, gpu_index: int) -> tuple[pd.DataFrame, TelemetryReport]:
    """Read one telemetry CSV of the V100 campaign, defensively.

    Parameters
    ----------
    path : path-like
        A telemetry CSV (E1 cells, E2 ``telemetry.csv``, E3 ``*_telemetry.csv``; the E6
        7-column layout with ``t`` is read too).
    gpu_index : int
        GPU whose rows are kept. Rows of other GPUs are counted, not returned.

    Returns
    -------
    data : pandas.DataFrame
        One row per kept sample, in file order, columns named as in the header (``t`` ->
        ``t_s``): ``t_s`` [s since the sampler started], ``gpu_index``, ``power_w`` [W],
        ``sm_clock_mhz`` and ``mem_clock_mhz`` [MHz], ``temperature_c`` [°C], ``util_gpu``
        and ``util_mem`` [-, 0-1], ``mem_used_mib`` [MiB], ``fan_pct`` [%],
        ``throttle_reasons`` (NVML bit mask as an integer-valued float), ``cpu_util`` [-],
        ``rapl_pkg_uj`` [µJ]. Empty optional fields are NaN. ``t_s`` strictly increases.
    report : TelemetryReport
        Lines read, rows kept and skipped lines by reason.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the header lacks a required column (``t_s``/``t``, ``gpu_index``, ``power_w``).
    """
    path = Path(path)
    with path.open(newline="") as fh:
        lines = fh.read().splitlines()
    if not lines:
        raise ValueError(f"{path}: empty file, expected a telemetry CSV header")
    header = [VARIABLE_MAP.get(h.strip(), h.strip()) for h in lines[0].split(",")]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: header {lines[0]!r} lacks {missing}; expected a V100 telemetry CSV")
    n_fields = len(header)
    hexcol = [h in HEX_COLUMNS for h in header]
    i_req = [header.index(c) for c in REQUIRED_COLUMNS]
    i_gpu = header.index("gpu_index")

    nan = float("nan")
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    other: dict[int, int] = {}
    rows: list[list[float]] = []
    for line in lines[1:]:
        if not line.strip():
            skipped["blank"] += 1
            continue
        parts = line.split(",")
        if len(parts) != n_fields:
            skipped["field_count"] += 1
            continue
        try:
            values = [(int(p, 16) if hx else float(p)) if p else nan
                      for p, hx in zip(parts, hexcol)]
        except ValueError:
            skipped["unparsable"] += 1
            continue
        if any(math.isnan(values[i]) for i in i_req):
            skipped["missing_required"] += 1
            continue
        g = values[i_gpu]
        if g != int(g):
            skipped["unparsable"] += 1
            continue
        if int(g) != gpu_index:
            skipped["other_gpu"] += 1
            other[int(g)] = other.get(int(g), 0) + 1
            continue
        rows.append(values)

    data = pd.DataFrame(rows, columns=header, dtype=float)
    keep = _longest_increasing(data["t_s"].to_numpy())
    skipped["time_out_of_order"] = int(np.sum(~keep))
    data = data.loc[keep].reset_index(drop=True)
    data["gpu_index"] = data["gpu_index"].astype(np.int64)
    report = TelemetryReport(str(path), int(gpu_index), len(lines) - 1, len(data),
                             MappingProxyType(skipped), MappingProxyType(dict(sorted(other.items()))))
    return data, report


#: Columns of E1 ``parsed_results.csv`` this project uses, with their units.
E1_COLUMNS = MappingProxyType({
    "run": "", "workload": "", "pcap_w": "W", "sm_target_mhz": "MHz", "iters_per_s": "1/s",
    "power_mean_w": "W", "sm_mean_mhz": "MHz", "temp_mean_c": "°C", "temp_max_c": "°C",
    "duration_s": "s", "wl_elapsed_s": "s", "energy_j": "J", "throttle_seen": "",
})


def read_e1_parsed_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read E1 ``parsed_results.csv`` (one row per cap x clock x workload cell).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`E1_COLUMNS` (units there), numbers as floats.

    Raises
    ------
    ValueError
        If a column is missing or a numeric field is not a finite number.
    """
    df = pd.read_csv(path)
    missing = [c for c in E1_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected E1 parsed_results.csv")
    df = df[list(E1_COLUMNS)].copy()
    for c, unit in E1_COLUMNS.items():
        if unit:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
            if not np.all(np.isfinite(df[c])):
                raise ValueError(f"{path}: column {c!r} holds non-numeric or missing values")
    return df


def read_e2_step_plan(path: str | os.PathLike) -> pd.DataFrame:
    """Read E2 ``step_plan.json``: the cap steps as applied.

    Returns
    -------
    pandas.DataFrame
        Columns ``t_planned_s``, ``t_actual_s`` [s on the step script's own clock, not
        the telemetry clock], ``pcap_w`` [W], ``label``, ``rc`` (nvidia-smi exit code).
    """
    plan = json.loads(Path(path).read_text())
    try:
        applied = plan["applied"]
        return pd.DataFrame({
            "t_planned_s": [float(a["t_planned"]) for a in applied],
            "t_actual_s": [float(a["t_actual"]) for a in applied],
            "pcap_w": [float(a["pcap_w"]) for a in applied],
            "label": [str(a["label"]) for a in applied],
            "rc": [int(a["rc"]) for a in applied],
        })
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: expected a step plan with 'applied' entries "
                         f"(t_planned, t_actual, pcap_w, label, rc): {exc}") from exc
