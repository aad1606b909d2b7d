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
* ``electrical`` (with ``[distribution]``): distribution loss energy (PSUs, PDUs, UPS,
  transformers; already inside facility energy and PUE), its share of facility energy,
  and PF / THD at the distribution's meter (energy-weighted means over ticks, PF minimum
  over ticks); null without.
* ``real_time_factor``: simulated seconds / wall seconds of the simulation
  (``wall_s``: building the facility and workload, simulating, writing parquet;
  not the PNG).
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np

J_PER_KWH = 3.6e6


def summarise(engine, *, wall_s: float, peak_rss_mb: float, version: str) -> dict:
    sc = engine.scenario
    rec = engine.recorder
    dt = sc.base_tick_s
    it_kwh = rec.column_sum("it_power_w") * dt / J_PER_KWH
    fac_kwh = rec.column_sum("facility_power_w") * dt / J_PER_KWH
    grid_kwh = rec.column_sum("grid_power_w") * dt / J_PER_KWH
    site = engine.site
    cfe = site.grid_carbon_free_j / (grid_kwh * J_PER_KWH) if grid_kwh > 0 else None
    if cfe is not None and math.isnan(cfe):
        cfe = None
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
        "hosts": sc.facility.nodes * sc.facility.hosts_per_node,
        "gpus": sc.facility.nodes * sc.facility.hosts_per_node * sc.facility.gpus_per_node,
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
        "grid_energy_kwh": grid_kwh,
        "cfe": cfe,
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
        "workload": _workload_summary(engine),
        "heat": _heat_summary(engine),
        "battery": _battery_summary(engine),
        "ffr": _ffr_summary(engine),
        "electrical": _electrical_summary(engine, fac_kwh, it_kwh),
        "control": engine.control.summary() if engine.control is not None else None,
        "co2_it_kg": engine.co2_it_g / 1e3,
        "co2_facility_kg": engine.co2_facility_g / 1e3,
        # job work done in the recorded window, at the configured cap's speed (capped jobs
        # do less per second), and the carbon per unit of it: the fair basis for comparing
        # controllers over a finite window (slowed work is otherwise pushed out of it)
        "work_node_h": (engine.fleet.work_node_s - engine.work0_node_s) / 3600.0,
        "co2_facility_g_per_node_h": (engine.co2_facility_g / ((engine.fleet.work_node_s - engine.work0_node_s)
                                                                / 3600.0)
                                      if engine.fleet.work_node_s > engine.work0_node_s else None),
        "outputs": sorted(["timeseries.parquet", "summary.json"]
                          + (["overview.png"] if sc.outputs.overview_png else [])
                          + (["hosts.parquet"] if sc.outputs.per_host_series else [])
                          + (["ffr_windows.parquet"] if len(engine.log_windows) else [])),
    }


def _workload_summary(engine) -> dict:
    """Where the jobs came from, what was dropped and why (never silently), and the
    flexibility the scenario assigned."""
    sc, jobs, wl = engine.scenario, engine.jobs, engine.workload
    dropped = dict(wl.dropped)
    for reason, n in engine.dropped_at_replay.items():
        dropped[reason] = dropped.get(reason, 0) + n
    out = {
        "source": sc.workload.source,
        "scheduler": "recorded start times" if wl.recorded_starts else sc.workload.scheduler,
        "jobs_in_table": int(len(jobs)),
        "jobs_backfilled": engine.queue.backfilled,
        "flexible_share": float(jobs["flexible"].mean()) if len(jobs) else None,
        "dropped_rows": dropped,
        "dropped_rows_total": int(sum(dropped.values())),
    }
    if wl.trace_meta is not None:
        out["trace"] = {k: v for k, v in wl.trace_meta.items() if k != "dropped"}
    return out


def _heat_summary(engine) -> dict | None:
    """District-heat KPIs: energies, recovery efficiency (delivered / recoverable, DCPI §9.2.2
    asks >= 60 %), the heat meter's EN 1434 maximum permissible error at the operating
    point (delivery-weighted mean and maximum) beside DCPI's 2 % (§6.3.2 d), supply
    temperature deviation (DCPI §6.3.2 b: +-2 K)."""
    site, rec, dt = engine.site, engine.recorder, engine.scenario.base_tick_s
    if site.heat is None:
        return None
    delivered = rec.column_sum("heat_delivered_w") * dt / J_PER_KWH
    recoverable = site.heat_recoverable_j / J_PER_KWH
    mpe = site.heat_mpe_weighted_j / site.heat_metered_j if site.heat_metered_j > 0 else None
    it_kwh = rec.column_sum("it_power_w") * dt / J_PER_KWH
    fac_kwh = rec.column_sum("facility_power_w") * dt / J_PER_KWH
    return {
        # Energy Reuse Effectiveness (The Green Grid, White Paper #29): (facility - reused) / IT.
        # PUE rises with heat reuse (the heat pump is facility load); ERE credits the heat sold.
        "ere": (fac_kwh - delivered) / it_kwh if it_kwh > 0 else None,
        "heat_demand_kwh": rec.column_sum("heat_demand_w") * dt / J_PER_KWH,
        "heat_delivered_kwh": delivered,
        "heat_unmet_kwh": site.heat_unmet_j / J_PER_KWH,
        "heat_recoverable_kwh": recoverable,
        "heat_pump_electricity_kwh": rec.column_sum("heat_pump_power_w") * dt / J_PER_KWH,
        "recovery_efficiency": delivered / recoverable if recoverable > 0 else None,
        "recovery_efficiency_dcpi_min": 0.60,
        "heat_meter_mpe_pct": mpe,
        "heat_meter_mpe_max_pct": rec.column_max("heat_meter_mpe_pct") if site.heat_metered_j > 0 else None,
        "heat_meter_dcpi_requirement_pct": 2.0,
        "heat_meter_meets_dcpi": (mpe is not None and mpe <= 2.0),
        "supply_max_deviation_k": site.dh_supply_dev_max_k,
        "supply_within_2k": site.dh_supply_dev_max_k <= 2.0,
    }


def _electrical_summary(engine, fac_kwh: float, it_kwh: float) -> dict | None:
    """Distribution losses of a facility run with ``[distribution]`` (docs/power.md)."""
    site = engine.site
    if site.distribution is None:
        return None
    loss_kwh = site.dist_loss_j / J_PER_KWH
    d = engine.scenario.distribution
    metered = site.dist_meter_j > 0
    return {
        "model": "even spread over circuits, tick-mean IT power, interpolated loss table",
        "redundancy": d.redundancy,
        "circuits": d.circuits,
        "distribution_loss_kwh": loss_kwh,
        "psu_loss_kwh": site.dist_psu_loss_j / J_PER_KWH,
        "upstream_loss_kwh": (site.dist_loss_j - site.dist_psu_loss_j) / J_PER_KWH,
        "loss_share_of_facility_energy": loss_kwh / fac_kwh if fac_kwh > 0 else None,
        "pue_without_distribution_loss": (fac_kwh - loss_kwh) / it_kwh if it_kwh > 0 else None,
        "power_factor_mean": site.dist_pf_weighted_j / site.dist_meter_j if metered else None,
        "power_factor_min": site.dist_pf_min if metered else None,
        "thd_mean": site.dist_thd_weighted_j / site.dist_meter_j if metered else None,
    }


def _battery_summary(engine) -> dict | None:
    site = engine.site
    if site.battery is None:
        return None
    b = site.battery
    st = b.state()
    cap_kwh = engine.scenario.battery.capacity_kwh
    return {
        "throughput_kwh": site.battery_throughput_j / J_PER_KWH,
        "losses_kwh": site.battery_loss_j / J_PER_KWH,
        "equivalent_full_cycles": site.battery_throughput_j / J_PER_KWH / (2.0 * cap_kwh),
        "final_soc": b.soc,
        "capacity_fraction": b.capacity_fraction,
        "state": st,
    }


def _ffr_summary(engine) -> dict | None:
    """Each FFR activation with its response measured on the 100 ms log: the time from the
    trigger until grid import first fell by 95 % of the committed reserve (against its mean
    over the second before the trigger), whether that met the full-activation deadline,
    and the smallest reduction held over the support period (as a fraction of the reserve)."""
    if engine.frequency is None:
        return None
    sc = engine.scenario
    battery_w = sc.battery.ffr_reserve_kw * 1e3 if sc.battery.model != "none" else 0.0
    gpu_w = {}  # trigger time -> the island table's committed IT reduction [W]
    if engine.control is not None:
        gpu_w = {e["trigger_s"]: e["committed_it_kw"] * 1e3 for e in engine.control.events}
    fine = sc.frequency.log_tick_s
    rows = engine.window_rows
    t = np.array([r[0] for r in rows])
    gi = engine.site.COLUMNS.index("grid_power_w")
    grid = np.array([r[2][gi] for r in rows])
    events = []
    for a in engine.activations:
        ev = {"trigger_utc": (sc.start + timedelta(seconds=a.trigger_s)).isoformat(),
              "trigger_s": a.trigger_s, "level_hz": a.level_hz,
              "deadline_s": a.full_activation_deadline_s - a.trigger_s,
              "support_end_s": a.support_end_s}
        reserve_w = battery_w + gpu_w.get(a.trigger_s, 0.0)
        ev["reserve_kw"] = reserve_w / 1e3
        before = grid[(t >= a.trigger_s - 1.0) & (t + fine <= a.trigger_s + 1e-9)]
        if reserve_w > 0 and before.size:
            base = before.mean()
            after = (t + fine > a.trigger_s) & (t < a.support_end_s)
            hit = np.flatnonzero(after & (grid <= base - 0.95 * reserve_w))
            ev["response_s"] = float(t[hit[0]] + fine - a.trigger_s) if hit.size else None
            ev["met_deadline"] = bool(hit.size and t[hit[0]] + fine - a.trigger_s <= ev["deadline_s"] + 1e-9)
            held = (t >= a.full_activation_deadline_s) & (t + fine <= a.support_end_s + 1e-9)
            ev["min_reduction_fraction"] = float((base - grid[held]).min() / reserve_w) if held.any() else None
            # docs/metrics.md §1: mean meter reduction over [deadline, support end) vs the reserve
            delivered = float((base - grid[held]).mean()) if held.any() else None
            ev["delivered_kw"] = None if delivered is None else delivered / 1e3
            ev["fr_quality"] = None if delivered is None else min(1.0, max(0.0, delivered / reserve_w))
        events.append(ev)
    met = [e.get("met_deadline") for e in events if "met_deadline" in e]
    q = [e["fr_quality"] for e in events if e.get("fr_quality") is not None]
    ratio = [e["delivered_kw"] / e["reserve_kw"] for e in events if e.get("delivered_kw") is not None]
    return {"activations": len(events), "battery_reserve_kw": battery_w / 1e3,
            "all_met_deadline": (all(met) if met else None),
            "ffr_quality_mean": float(np.mean(q)) if q else None, "ffr_quality_min": float(np.min(q)) if q else None,
            "ffr_delivered_ratio_mean": float(np.mean(ratio)) if ratio else None, "events": events}
