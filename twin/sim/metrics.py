"""Run KPIs for summary.json, computed from the recorder's running sums and maxima.

Definitions (units in the key names):

* ``it_energy_kwh``, ``facility_energy_kwh``: sum over ticks of mean power x tick.
* ``pue_mean``: facility energy / IT energy over the run (ISO/IEC 30134-2's
  energy ratio, REFERENCE.md §2.4), not the mean of tick PUEs.
* ``pue_max``: highest tick PUE (tick-mean facility power / tick-mean IT power).
* ``peak_facility_power_kw``: highest tick-mean facility power.
* ``co2_kg``: sum over ticks of facility energy x carbon intensity of the hour.
* ``energy_balance_rel_error``: |electricity in - (heat rejected + stored + losses)|
  / electricity in over the run, each term from its own component
  (``twin.facility.balance``); a run above 1e-3 fails and writes no results.
* ``real_time_factor``: simulated seconds / wall seconds of the simulation
  (``wall_s``: building the facility and workload, simulating, writing parquet;
  not the PNG).
"""

from __future__ import annotations

from datetime import timedelta

J_PER_KWH = 3.6e6


def summarise(engine, *, wall_s: float, peak_rss_mb: float, version: str) -> dict:
    sc = engine.scenario
    rec = engine.recorder
    dt = sc.base_tick_s
    it_kwh = rec.column_sum("it_power_w") * dt / J_PER_KWH
    fac_kwh = rec.column_sum("facility_power_w") * dt / J_PER_KWH
    n = rec.n_rows
    if n != sc.n_ticks:
        raise RuntimeError(f"recorded {n} ticks, expected {sc.n_ticks}: refusing to summarise an incomplete run")
    return {
        "gridtwin_version": version,
        "scenario": sc.name,
        "scenario_file": sc.source_path,
        "scenario_sha256": sc.sha256,
        "seed": sc.seed,
        "start_utc": sc.start.isoformat(),
        "end_utc": (sc.start + timedelta(seconds=sc.duration_s)).isoformat(),
        "duration_h": sc.duration_h,
        "base_tick_s": dt,
        "ticks": n,
        "nodes": sc.facility.nodes,
        "gpus": sc.facility.nodes * sc.facility.gpus_per_node,
        "design_it_power_kw": sc.facility.design_it_power_w / 1e3,
        "it_energy_kwh": it_kwh,
        "gpu_energy_kwh": rec.column_sum("gpu_power_w") * dt / J_PER_KWH,
        "host_energy_kwh": rec.column_sum("host_power_w") * dt / J_PER_KWH,
        "cooling_energy_kwh": sum(rec.column_sum(c) for c in ("chiller_power_w", "pump_power_w", "fan_power_w"))
        * dt / J_PER_KWH,
        "misc_energy_kwh": rec.column_sum("misc_power_w") * dt / J_PER_KWH,
        "facility_energy_kwh": fac_kwh,
        "pue_mean": fac_kwh / it_kwh if it_kwh > 0 else None,
        "pue_max": rec.column_max("pue"),
        "peak_facility_power_kw": rec.column_max("facility_power_w") / 1e3,
        "mean_it_power_kw": it_kwh / sc.duration_h,
        "mean_busy_node_fraction": rec.column_sum("busy_nodes") / n / sc.facility.nodes,
        "co2_kg": rec.column_sum("co2_g") / 1e3,
        "carbon_intensity_mean_g_per_kwh": rec.column_sum("carbon_intensity_g_per_kwh") / n,
        "jobs_submitted": engine.counts.submitted,
        "jobs_started": engine.counts.started,
        "jobs_completed": engine.counts.completed,
        "jobs_total_generated": int(len(engine.jobs)),
        "cooling_model": sc.cooling.model,
        "energy_balance_rel_error": engine.site.ledger.rel_error(),
        "energy_balance_kwh": engine.site.ledger.summary_kwh(),
        "wall_s": wall_s,
        "real_time_factor": sc.duration_s / wall_s if wall_s > 0 else None,
        "peak_rss_mb": peak_rss_mb,
        "outputs": sorted(["timeseries.parquet", "summary.json"]
                          + (["overview.png"] if sc.outputs.overview_png else [])
                          + (["hosts.parquet"] if sc.outputs.per_host_series else [])),
    }
