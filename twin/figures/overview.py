"""overview.png: facility and IT power, PUE and carbon intensity over a run."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_overview(path: Path, start: datetime, t_s: np.ndarray, series: dict[str, np.ndarray], title: str) -> None:
    """Write a three-panel PNG.

    Parameters
    ----------
    path : Path
        Output PNG.
    start : datetime
        Aware UTC time of ``t_s = 0``.
    t_s : array
        Sample times [s since start] (block starts of the recorder's coarse series).
    series : dict
        ``facility_power_w``, ``it_power_w``, ``pue``, ``carbon_intensity_g_per_kwh`` arrays
        (and ``grid_power_w``, drawn when it differs from facility power).
    title : str
        Figure title.
    """
    times = np.datetime64(start.replace(tzinfo=None), "ns") + (t_s * 1e9).astype("timedelta64[ns]")
    fac_w, it_w = series["facility_power_w"], series["it_power_w"]
    scale, unit = (1e6, "MW") if np.nanmax(fac_w, initial=0.0) >= 2e6 else (1e3, "kW")
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True, constrained_layout=True)
    ax = axes[0]
    ax.plot(times, fac_w / scale, label="facility (site load)", color="tab:red", lw=1)
    ax.plot(times, it_w / scale, label="IT", color="tab:blue", lw=1)
    ax.fill_between(times, it_w / scale, fac_w / scale, color="tab:red", alpha=0.15,
                    label="cooling, heat pump and misc")
    grid_w = series.get("grid_power_w")
    if grid_w is not None and not np.allclose(grid_w, fac_w, rtol=1e-9, equal_nan=True):
        ax.plot(times, grid_w / scale, label="grid import (meter, with battery)", color="black", lw=0.8, ls="--")
    ax.set_ylabel(f"power [{unit}]")
    ax.legend(loc="upper left", fontsize=8, ncols=4)
    ax.grid(alpha=0.3)
    axes[1].plot(times, series["pue"], color="tab:purple", lw=1)
    axes[1].set_ylabel("PUE [-]")
    axes[1].grid(alpha=0.3)
    axes[2].step(times, series["carbon_intensity_g_per_kwh"], where="post", color="tab:green", lw=1)
    axes[2].set_ylabel("carbon intensity\n[gCO$_2$eq/kWh]")
    axes[2].set_xlabel("time [UTC]")
    axes[2].grid(alpha=0.3)
    locator = mdates.AutoDateLocator()
    axes[2].xaxis.set_major_locator(locator)
    axes[2].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
