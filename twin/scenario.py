"""Scenario files: TOML -> typed, validated :class:`Scenario`.

One schema table (:data:`SCHEMA`) drives validation, defaults and the reference page
``docs/scenario.md`` (regenerate it with ``python -m twin.scenario > docs/scenario.md``;
a test checks it is current). Every key carries its unit in its name.

Errors are collected, not raised one at a time: :class:`ScenarioError` lists every
problem, each naming the file, the key path, the bad value and what was expected.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from traces.training import TrainingPowerParams
from twin.facility.cooling_plant import MODEL_PARAMETER_ROWS
from twin.facility.distribution import PRIORITIES
from twin.physics.gpu import GPU_PROFILES, GpuProfile
from twin.physics.weather import wet_bulb_never_exceeds_dry_bulb

REQUIRED = object()
COUNTRIES = ("SE", "CH", "FR", "IT", "DE", "PL")


class ScenarioError(ValueError):
    """A scenario file is invalid. ``problems`` holds one line per problem."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


@dataclass(frozen=True)
class Key:
    """One scenario key: type, unit, default, bounds and meaning (a schema row)."""

    name: str
    kind: str  # "float" | "int" | "str" | "bool" | "datetime"
    unit: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] | None = None
    source: str = ""
    when: tuple[str, tuple[str, ...]] | None = None  # (selector key, values it applies to)

    def expected(self) -> str:
        """Human description of an acceptable value (for error messages and docs)."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        words = {"float": "a number", "int": "an integer", "str": "a string",
                 "bool": "true or false",
                 "datetime": "a UTC date-time such as 2025-07-15T00:00:00Z"}[self.kind]
        lo = None if self.min is None else (f"> {self.min:g}" if self.min_exclusive else f">= {self.min:g}")
        hi = None if self.max is None else f"<= {self.max:g}"
        rng = " and ".join(x for x in (lo, hi) if x)
        unit = f" [{self.unit}]" if self.unit and self.unit != "-" else ""
        return f"{words}{' ' + rng if rng else ''}{unit}"


def _k(name, kind, unit, default, description, **kw) -> Key:
    return Key(name, kind, unit, default, description, **kw)


# Sources for defaults are given per key; "assumption" means chosen by us, documented.
SCHEMA: dict[str, tuple[Key, ...]] = {
    "": (
        _k("name", "str", "-", REQUIRED, "Run name; results go to OUT/NAME/ (gridtwin run --out OUT)."),
        _k("description", "str", "-", "", "Free text."),
        _k("start", "datetime", "UTC", REQUIRED, "Start of the simulated period (aware, UTC)."),
        _k("duration_h", "float", "h", REQUIRED, "Simulated duration.", min=0.0, max=24 * 366 * 2,
           min_exclusive=True),
        _k("base_tick_s", "float", "s", 1.0, "Base tick of the engine and the recorder; must divide one hour.",
           min=0.001, max=3600.0),
        _k("seed", "int", "-", 0, "Seed of every random generator in the run.", min=0),
    ),
    "facility": (
        _k("nodes", "int", "-", REQUIRED, "Number of compute nodes (hosts).", min=1, max=10_000_000),
        _k("gpus_per_node", "int", "-", REQUIRED, "GPUs per node.", min=1, max=64),
        _k("hosts_per_node", "int", "-", 1, "Identical hosts behind each node slot: the slot is one cohort that "
           "runs its jobs on all of them at once (coarse cohorts for large sites; 1 = per-host resolution). "
           "IT power, design power and job widths scale by it; so does nothing else.", min=1, max=1_000_000,
           source="DESIGN.md (cohorts)"),
        _k("gpu_model", "str", "-", REQUIRED, "GPU profile (limits, idle power, lag).",
           choices=tuple(GPU_PROFILES)),
        _k("gpu_power_cap_w", "float", "W", None,
           "Power cap applied to every GPU; default: the model's maximum limit (TDP). "
           "Must lie in the model's power-limit range."),
        _k("gpu_sm_clock_mhz", "float", "MHz", None,
           "SM clock of running GPUs for the calibrated power model; default: the model's maximum boost clock "
           "(the V100 fit covers 405-1380 MHz; docs/models.md gives the extrapolation error at 1530 MHz).",
           min=100.0, max=3000.0),
        _k("host_idle_w", "float", "W", REQUIRED, "Non-GPU node power (CPUs, memory, NICs, disks, fans) when idle.",
           min=0.0),
        _k("host_busy_w", "float", "W", REQUIRED, "Non-GPU node power when the host is fully busy; >= host_idle_w.",
           min=0.0),
    ),
    "cooling": (
        _k("model", "str", "-", REQUIRED,
           "Cooling plant: 'paper_eq4' (seed 004 Eq. 4, calibrated to PUE 1.20 at the Marconi100 design point), "
           "'air_chiller' (CRAH + chilled water from an EIR chiller, tower, economiser) or 'dlc_warm_water' "
           "(warm-water direct liquid cooling with dry coolers). Parameters: docs/models.md.",
           choices=tuple(name for name, _ in MODEL_PARAMETER_ROWS)),
        *(Key(key, kind, unit, default, desc, min=lo, max=hi, source=src, when=("model", (model,)))
          for model, rows in MODEL_PARAMETER_ROWS
          for key, kind, unit, default, desc, lo, hi, src in rows),
    ),
    "weather": (
        _k("model", "str", "-", REQUIRED,
           "Ambient model: 'climate' (a site's typical-year monthly climatology with a diurnal cycle) or "
           "'diurnal' (one cosine day repeated, parameters below).", choices=("climate", "diurnal")),
        _k("site", "str", "-", REQUIRED, "Country whose reference site's climatology to use (docs/models.md).",
           choices=COUNTRIES, when=("model", ("climate",))),
        _k("depression_swing_fraction", "float", "-", 0.8,
           "Relative diurnal swing of the wet-bulb depression (0: constant depression).", min=0.0, max=1.0,
           when=("model", ("climate",)), source="assumption (docs/models.md)"),
        _k("dry_bulb_mean_c", "float", "degC", REQUIRED, "Daily mean dry-bulb.", min=-60.0, max=60.0,
           when=("model", ("diurnal",))),
        _k("dry_bulb_range_k", "float", "K", REQUIRED, "Daily dry-bulb max - min.", min=0.0, max=40.0,
           when=("model", ("diurnal",))),
        _k("wet_bulb_mean_c", "float", "degC", REQUIRED, "Daily mean wet-bulb; <= dry-bulb at every hour.",
           min=-60.0, max=40.0, when=("model", ("diurnal",))),
        _k("wet_bulb_range_k", "float", "K", REQUIRED, "Daily wet-bulb max - min.", min=0.0, max=40.0,
           when=("model", ("diurnal",))),
        _k("peak_hour_utc", "float", "h", 14.0, "UTC hour of the daily maximum.", min=0.0, max=24.0,
           source="assumption: mid-afternoon local time in central Europe"),
    ),
    "workload": (
        _k("source", "str", "-", REQUIRED,
           "Where jobs come from: 'synthetic' (seeded Marconi100-like stream), 'm100_jobs' (a Marconi100 job "
           "table with submit times, queued here) or 'pm100' (PM100 job table: recorded start times and power).",
           choices=("synthetic", "m100_jobs", "pm100")),
        _k("offered_load", "float", "-", REQUIRED,
           "Requested node-seconds as a fraction of the facility's node-seconds (queueing may hold some back).",
           min=0.0, max=2.0, min_exclusive=True, when=("source", ("synthetic",))),
        _k("path", "str", "-", REQUIRED, "The trace file (parquet); relative paths start at the scenario file's "
           "folder.", when=("source", ("m100_jobs", "pm100"))),
        _k("trace_start", "datetime", "UTC", REQUIRED, "Trace time that maps to the scenario's start.",
           when=("source", ("m100_jobs", "pm100"))),
        _k("rebase", "bool", "-", True,
           "Shift the trace by a whole number of weeks (keeps weekday and time of day; the trace day used is the "
           "one with the start's weekday nearest trace_start) instead of exactly trace_start -> start.",
           when=("source", ("m100_jobs", "pm100"))),
        _k("flexible_fraction", "float", "-", 0.3,
           "Share of jobs whose start may be deferred (traces carry no flexibility; assigned, seeded).",
           min=0.0, max=1.0, source="assumption (docs/traces.md)"),
        _k("deadline_slack_min", "float", "-", 1.0,
           "Flexible jobs must finish by submit + run time x (1 + slack), slack uniform in [min, max].",
           min=0.0, max=100.0, source="assumption (docs/traces.md)"),
        _k("deadline_slack_max", "float", "-", 4.0, "Upper end of the slack range (see deadline_slack_min).",
           min=0.0, max=100.0, source="assumption (docs/traces.md)"),
        _k("scheduler", "str", "-", "easy_backfill",
           "Batch scheduling of queued jobs: first-come first-served with EASY backfilling (reservations from "
           "time limits) or strict FCFS.", choices=("easy_backfill", "fcfs"), source="docs/architecture.md"),
        _k("compute_bound_share", "float", "-", 0.5,
           "Share of GPU jobs whose kernels are compute-bound (calibrated V100 class model).", min=0.0, max=1.0,
           source="assumption (no per-job class in the traces); shares must sum to 1"),
        _k("memory_bound_share", "float", "-", 0.3, "Share of GPU jobs that are memory-bound.", min=0.0, max=1.0,
           source="assumption"),
        _k("bursty_share", "float", "-", 0.2, "Share of GPU jobs that alternate compute and idle phases.",
           min=0.0, max=1.0, source="assumption"),
        _k("warmup_h", "float", "h", 24.0,
           "Jobs are generated and scheduled from this long before the start so the run opens on a busy facility.",
           min=0.0, max=24 * 31),
    ),
    "grid": (
        _k("country", "str", "-", REQUIRED, "Bidding zone / country of the grid connection.", choices=COUNTRIES),
        _k("carbon_source", "str", "-", REQUIRED,
           "Carbon-intensity series: 'synthetic' (seeded, fitted to 2025 ENTSO-E data for the country) or "
           "'constant', or 'file' (an hourly parquet: the ENTSO-E 2025 format of shared/data or a "
           "`gridtwin ci fetch` cache).", choices=("synthetic", "constant", "file")),
        _k("carbon_file", "str", "-", REQUIRED, "The hourly carbon-intensity parquet; relative paths start at the "
           "scenario file's folder.", when=("carbon_source", ("file",))),
        _k("constant_intensity_g_per_kwh", "float", "gCO2eq/kWh", REQUIRED, "The constant intensity.",
           min=0.0, max=2000.0, when=("carbon_source", ("constant",))),
        _k("constant_carbon_free_fraction", "float", "-", REQUIRED,
           "Carbon-free share of the grid's generation, constant (enters the CFE share).",
           min=0.0, max=1.0, when=("carbon_source", ("constant",))),
    ),
    "battery": (
        _k("model", "str", "-", "none", "Battery energy storage on the site bus: 'none' or 'lfp' "
           "(LFP cells, BLAST-Lite ageing; docs/models.md).", choices=("none", "lfp")),
        _k("capacity_kwh", "float", "kWh", REQUIRED, "Nominal energy capacity.", min=0.0, max=1e7,
           min_exclusive=True, when=("model", ("lfp",))),
        _k("max_charge_kw", "float", "kW", REQUIRED, "Converter limit when charging.", min=0.0, max=1e7,
           when=("model", ("lfp",))),
        _k("max_discharge_kw", "float", "kW", REQUIRED, "Converter limit when discharging.", min=0.0, max=1e7,
           when=("model", ("lfp",))),
        _k("soc_min", "float", "-", 0.1, "Lowest state of charge used.", min=0.0, max=1.0, when=("model", ("lfp",)),
           source="assumption (REFERENCE.md: BESS SoC window unsourced)"),
        _k("soc_max", "float", "-", 0.9, "Highest state of charge used.", min=0.0, max=1.0, when=("model", ("lfp",)),
           source="assumption (REFERENCE.md: BESS SoC window unsourced)"),
        _k("initial_soc", "float", "-", 0.5, "State of charge at the start; also the recharge target.",
           min=0.0, max=1.0, when=("model", ("lfp",))),
        _k("round_trip_efficiency", "float", "-", 0.85, "AC round-trip efficiency.", min=0.5, max=1.0,
           when=("model", ("lfp",)), source="REFERENCE.md §4 (NREL ATB)"),
        _k("temp_c", "float", "degC", 25.0, "Cell temperature for ageing.", min=-20.0, max=60.0,
           when=("model", ("lfp",)), source="assumption (conditioned container)"),
        _k("peak_shaving_import_kw", "float", "kW", None,
           "Keep grid import at or below this while energy lasts (omit: no peak shaving).", min=0.0, max=1e7,
           when=("model", ("lfp",))),
        _k("max_ramp_kw_per_s", "float", "kW/s", None,
           "Limit the grid-import ramp to this (omit: no ramp smoothing).", min=0.0, max=1e7,
           min_exclusive=True, when=("model", ("lfp",))),
        _k("ffr_reserve_kw", "float", "kW", 0.0,
           "Power the battery delivers (import reduction) during an FFR activation; 0: no FFR commitment.",
           min=0.0, max=1e7, when=("model", ("lfp",))),
        _k("fcr_d_reserve_kw", "float", "kW", 0.0,
           "FCR-D upwards capacity: import reduction at 49.5 Hz, linear from 49.9 Hz (needs [frequency]); "
           "0: none.", min=0.0, max=1e7, when=("model", ("lfp",)), source="REFERENCE.md §6.2 (droop band)"),
        _k("recharge_kw", "float", "kW", 0.0,
           "Charging power used to return toward initial_soc when no service needs the battery.",
           min=0.0, max=1e7, when=("model", ("lfp",))),
    ),
    "heat": (
        _k("model", "str", "-", "none", "Waste-heat recovery: 'none' or 'district_heating' (heat pump on the "
           "liquid-cooling return, storage tank, metered delivery; needs cooling.model = 'dlc_warm_water').",
           choices=("none", "district_heating")),
        _k("heat_pump_capacity_kw", "float", "kW", REQUIRED, "Largest heat-pump heat output.", min=0.0, max=1e7,
           min_exclusive=True, when=("model", ("district_heating",))),
        _k("annual_demand_mwh", "float", "MWh", REQUIRED,
           "Heat the network takes in a typical year (sets the demand profile's scale).", min=0.0, max=1e8,
           min_exclusive=True, when=("model", ("district_heating",)),
           source="e.g. Meta Odense 100 000 MWh/yr (REFERENCE.md §3.3)"),
        _k("base_load_fraction", "float", "-", 0.3, "Weather-independent share of the demand (hot water, losses).",
           min=0.0, max=1.0, when=("model", ("district_heating",)), source="assumption (docs/models.md)"),
        _k("degree_day_base_c", "float", "degC", 15.5, "Heating degree-day base temperature.", min=0.0, max=25.0,
           when=("model", ("district_heating",)), source="assumption (docs/models.md)"),
        _k("supply_setpoint_c", "float", "degC", 75.0, "Network supply temperature setpoint.", min=70.0, max=90.0,
           when=("model", ("district_heating",)), source="DCPI §6.3.2 b (70-90 C); Meta Odense 75 C (REFERENCE §3.3)"),
        _k("return_temp_c", "float", "degC", 40.0, "Network return temperature.", min=10.0, max=65.0,
           when=("model", ("district_heating",)), source="REFERENCE.md §3.2-3.3"),
        _k("tank_volume_m3", "float", "m3", REQUIRED, "Thermal storage tank volume.", min=0.0, max=1e6,
           min_exclusive=True, when=("model", ("district_heating",))),
        _k("tank_ua_w_per_k", "float", "W/K", REQUIRED, "Tank standing-loss coefficient to ambient.", min=0.0,
           max=1e6, when=("model", ("district_heating",))),
        _k("meter_permanent_flow_m3_per_h", "float", "m3/h", REQUIRED, "Permanent flow q_p of the delivery meter.",
           min=0.0, max=1e6, min_exclusive=True, when=("model", ("district_heating",))),
        _k("meter_class", "int", "-", 2, "EN 1434 / MID accuracy class of the delivery meter.", min=1, max=3,
           when=("model", ("district_heating",)), source="REFERENCE.md §3.4"),
    ),
    "frequency": (
        _k("source", "str", "-", "none", "Grid frequency: 'none' or 'synthetic' (seeded noise plus FFR dips).",
           choices=("none", "synthetic")),
        _k("ffr_dips", "int", "-", REQUIRED, "Number of frequency dips through the FFR level in the run "
           "(random times, seeded, at least re-arm time apart).", min=0, max=100_000,
           when=("source", ("synthetic",))),
        _k("dip_nadir_hz", "float", "Hz", 49.5, "Lowest frequency of each dip.", min=47.0, max=49.99,
           when=("source", ("synthetic",))),
        _k("ffr_level_hz", "float", "Hz", 49.7, "FFR activation level (49.7, 49.6 or 49.5 Hz).", min=49.5, max=49.7,
           when=("source", ("synthetic",)), source="REFERENCE.md §6.1 (Nordic FFR)"),
        _k("ffr_support_s", "float", "s", 30.0, "Support duration of an activation (5 or 30 s).", min=5.0, max=30.0,
           when=("source", ("synthetic",)), source="REFERENCE.md §6.1"),
        _k("log_tick_s", "float", "s", 0.1, "Resolution of the FFR activation log.", min=0.001, max=1.0,
           when=("source", ("synthetic",)), source="REFERENCE.md §6.1 measurement rule (100 ms)"),
        _k("log_pre_s", "float", "s", 10.0, "The log opens this long before each trigger.", min=0.0, max=600.0,
           when=("source", ("synthetic",)), source="REFERENCE.md §6.1 (10 s before activation)"),
        _k("log_post_s", "float", "s", 60.0, "The log stays open this long after the support ends.", min=0.0,
           max=3600.0, when=("source", ("synthetic",)),
           source="assumption: Svk asks for 15 min (REFERENCE.md §6.1); 60 s keeps files small, raise it to 900"),
    ),
    "control": (
        _k("tier2", "str", "-", "none", "Tier 2: 'none', or 'rls_ar' (AR(4) per host fitted by recursive least "
           "squares, one-step-ahead prediction of host power every tier2_period_s).", choices=("none", "rls_ar"),
           source="seed 004 §3.1"),
        _k("tier2_period_s", "float", "s", 1.0, "Tier-2 period; a whole number of base ticks or a divisor of one.",
           min=0.001, max=3600.0, min_exclusive=False, when=("tier2", ("rls_ar",)), source="seed 004 §3.1 (1 Hz)"),
        _k("tier2_memory_s", "float", "s", 60.0, "Effective memory of the RLS forgetting factor: "
           "lambda = 1 - tier2_period_s / tier2_memory_s.", min=2.0, max=86400.0, when=("tier2", ("rls_ar",)),
           source="seed 004 §3.1 (~60 s); docs/parameters.md"),
        _k("ffr_gpu", "str", "-", "none", "FFR answered by the GPUs too: 'none', or 'island' (each host's safety "
           "island applies the island table's trigger row, with modelled latency, and restores at support end).",
           choices=("none", "island"), source="seed 004 §2, §3.2"),
        _k("reserve_band", "float", "-", 0.2, "Share of each busy GPU's power the island table sheds on a trigger.",
           min=0.0, max=0.9, min_exclusive=True, when=("ffr_gpu", ("island",)),
           source="seed 004 §4 (20 % reserve band on the 100-host day)"),
        _k("island_latency", "str", "-", "nvml", "Latency model of the island: 'nvml' (the C island writing "
           "through NVML) or 'nvidia_smi_e7' (one nvidia-smi call per GPU, as measured in E7).",
           choices=("nvml", "nvidia_smi_e7"), when=("ffr_gpu", ("island",)), source="docs/parameters.md"),
        _k("table_refresh_s", "float", "s", 60.0, "The island table is rewritten this often from the latest "
           "power predictions (Tier 2's where it runs, the measured power otherwise).", min=1.0, max=86400.0,
           when=("ffr_gpu", ("island",)), source="assumption: docs/parameters.md"),
        _k("tier3", "str", "-", "none", "Tier 3, hourly: 'none', 'pue_aware' (grid search over operating "
           "fraction u and reserve band r with the paper's Eq. 4 facility model in the objective) or 'ci_only' "
           "(the same search with facility power = IT power).", choices=("none", "pue_aware", "ci_only"),
           source="seed 004 §3.1, §3.3; docs/metrics.md §6"),
        _k("ffr_commitment_kw", "float", "kW", 0.0, "FFR reserve committed at the facility meter each hour "
           "(Tier 3 sizes r so that the meter sees it).", min=0.0, max=1e7, when=("tier3", ("pue_aware", "ci_only")),
           source="docs/metrics.md §1"),
        _k("tier3_forecast", "str", "-", "perfect", "What Tier 3 knows of the hour's carbon intensity and "
           "carbon-free share and of the next 24 h (its reference): 'perfect', 'persistence' (the last hour "
           "held: CI / reference is then 1 and Tier 3 never curtails) or 'seasonal_naive' (a day earlier).",
           choices=("perfect", "persistence", "seasonal_naive"), when=("tier3", ("pue_aware", "ci_only")),
           source="docs/parameters.md (scheduler forecasts)"),
        _k("ffr_min_commitment_kw", "float", "kW", 0.0, "An hour whose planned reserve at the meter is below this "
           "commits none (a minimum bid; Svk's FFR minimum is 100 kW for a real bid).", min=0.0, max=1e7,
           when=("tier3", ("pue_aware", "ci_only")), source="REFERENCE.md §6.1 (0.1 MW minimum bid)"),
        _k("scheduler", "str", "-", "none", "Carbon-aware scheduler: 'none' or 'carbon_aware' (defer flexible "
           "jobs while the signal is above the 66th percentile of its 24 h look-ahead, never past a deadline; "
           "cap running jobs to 80 % in those hours).", choices=("none", "carbon_aware"), source="seed 004 §3.3"),
        _k("scheduler_signal", "str", "-", "ci_x_pue", "Deferral signal: 'ci_x_pue' (carbon intensity x the "
           "Eq. 4 PUE at the hour's weather and the current IT load) or 'ci'.", choices=("ci_x_pue", "ci"),
           when=("scheduler", ("carbon_aware",)), source="seed 004 §3.3"),
        _k("scheduler_forecast", "str", "-", "perfect", "Look-ahead of the signal: 'perfect' (foresight), "
           "'persistence' (last hour held: never defers) or 'seasonal_naive' (the same hour a day earlier).",
           choices=("perfect", "persistence", "seasonal_naive"), when=("scheduler", ("carbon_aware",)),
           source="docs/parameters.md (scheduler)"),
        _k("tier1", "str", "-", "pid", "Tier 1 during an island shed: 'pid' (200 Hz PID holds the shed power "
           "target per cohort until the support ends) or 'none' (the island's caps alone).",
           choices=("pid", "none"), when=("ffr_gpu", ("island",)), source="seed 004 §3.1"),
    ),
    "outputs": (
        _k("per_host_series", "bool", "-", False,
           "Also write per-host power at the base tick (hosts.parquet, streamed in row groups)."),
        _k("overview_png", "bool", "-", True, "Write overview.png."),
    ),
    # ---- power study (issue 8; twin/sim/power_study.py): a scenario with [training] is one ----
    "training": (
        _k("base_it_mw", "float", "MW", 0.0, "Power study: a scenario with [training] and at least one "
           "[[training.jobs]] table runs twin/sim/power_study.py instead of the facility engine ([workload] "
           "and [frequency] are then not used). This key: IT load besides the jobs and the critical load "
           "(storage, network, other services), constant, spread evenly over all circuits.", min=0.0, max=1e5,
           source="scenario input"),
        _k("base_priority", "str", "-", "high", "Shedding priority of the base load.", choices=PRIORITIES[1:],
           source="assumption"),
        _k("critical_it_mw", "float", "MW", 0.0, "Critical IT load, never shed (DCPI §6.2.1 d), constant, "
           "spread evenly over all circuits.", min=0.0, max=1e5, source="scenario input"),
        _k("chiller_units", "int", "-", 10, "Mechanical cooling (air_chiller chillers; dlc_warm_water trim and "
           "air-side chillers) is staged in this many equal units.", min=1, max=1000,
           source="assumption (docs/power.md)"),
        _k("chiller_start_delay_s", "float", "s", 180.0, "Time from a staging request to the unit's capacity "
           "being online.", min=0.0, max=3600.0,
           source="assumption: no sourced chiller start time; large chillers take minutes"),
        _k("staging_margin", "float", "-", 0.1, "Units are staged for the IT heat x (1 + margin); one more unit "
           "is requested while the supply temperature is > 0.5 K above its setpoint.", min=0.0, max=1.0,
           source="assumption"),
        _k("cooling_lead_s", "float", "s", 300.0, "Announced jobs: cooling is pre-staged this long before the "
           "start (DCPI §5.1.2 predictive resource preparation).", min=0.0, max=86400.0,
           source="assumption (prepare_for_workload default, docs/power.md)"),
    ),
    "training.jobs": (
        _k("name", "str", "-", REQUIRED, "Array of tables: write one [[training.jobs]] per synchronous training "
           "job (traces/training.py). Job name, unique."),
        _k("peak_mw", "float", "MW", REQUIRED, "IT power in the compute phase.", min=0.0, max=1e5,
           min_exclusive=True),
        _k("start_s", "float", "s", 0.0, "Start, seconds after the scenario start.", min=0.0),
        _k("duration_s", "float", "s", None, "Run time; omit: runs to the end of the study.", min=0.0,
           min_exclusive=True),
        _k("priority", "str", "-", "normal", "Shedding priority (DCPI §6.1.2 e).", choices=PRIORITIES),
        _k("announce_lead_s", "float", "s", 0.0, "Announced this long before its start (DCPI §6.1.2); 0: "
           "unannounced, no preparation. An announcement before t = 0 acts at t = 0.", min=0.0),
        _k("swing_fraction", "float", "-", TrainingPowerParams.swing_fraction,
           "Compute/communication swing depth, fraction of peak.", min=0.0, max=1.0,
           source="assumption (docs/power.md: a 300 MW job swings ~150 MW)"),
        _k("period_s", "float", "s", TrainingPowerParams.period_s, "Iteration period.", min=1.0 / 3.0, max=5.0,
           source="REFERENCE.md §1.3, §8.7 (0.2-3 Hz)"),
        _k("compute_duty", "float", "-", TrainingPowerParams.compute_duty, "Compute-phase share of an iteration.",
           min=0.0, max=1.0, min_exclusive=True, source="assumption"),
        _k("edge_ramp_s", "float", "s", TrainingPowerParams.edge_ramp_s, "Duration of every power edge.",
           min=0.0, max=5.0, source="DCPI Introduction (within 40 ms)"),
        _k("checkpoint_interval_s", "float", "s", TrainingPowerParams.checkpoint_interval_s,
           "Checkpoint spacing (rounded to whole data-load cycles).", min=0.0, min_exclusive=True,
           source="assumption"),
        _k("checkpoint_duration_s", "float", "s", TrainingPowerParams.checkpoint_duration_s,
           "Checkpoint length; 0: none.", min=0.0, source="assumption"),
        _k("checkpoint_power_fraction", "float", "-", TrainingPowerParams.checkpoint_power_fraction,
           "Power while checkpointing, fraction of peak.", min=0.0, max=1.0, source="assumption"),
        _k("data_load_interval_s", "float", "s", TrainingPowerParams.data_load_interval_s,
           "Data-load spacing (rounded to whole iterations).", min=0.0, min_exclusive=True, source="assumption"),
        _k("data_load_duration_s", "float", "s", TrainingPowerParams.data_load_duration_s,
           "Data-load pause length; 0: none.", min=0.0, source="assumption"),
        _k("data_load_power_fraction", "float", "-", TrainingPowerParams.data_load_power_fraction,
           "Power while loading data, fraction of peak.", min=0.0, max=1.0, source="assumption"),
    ),
    "smoothing": (
        _k("max_ramp_mw_per_s", "float", "MW/s", 10.0, "Power study: ramp limit at the meter (battery, GPU "
           "floors, throttling; twin/control/smoothing.py). Every study runs with and without smoothing.",
           min=0.0, max=1e5, min_exclusive=True,
           source="assumption (no sourced utility figure, REFERENCE.md §8.7; < 50 MW/s meets DCPI §3)"),
        _k("lowpass_s", "float", "s", 10.0, "Time constant of the grid target's low-pass of the load.", min=0.0,
           max=3600.0, source="assumption (docs/power.md)"),
        _k("target_soc", "float", "-", 0.5, "SoC the controller restores.", min=0.0, max=1.0, source="assumption"),
        _k("soc_restore_s", "float", "s", 600.0, "Time constant of the SoC restoring term.", min=0.0, max=1e6,
           min_exclusive=True, source="assumption"),
        _k("floor_mw", "float", "MW", 0.0, "Standing GPU power floor (NVML secondary floor x GPUs), at the meter.",
           min=0.0, max=1e5, source="NVML power smoothing (docs/power.md)"),
        _k("gpu_ramp_down_mw_per_s", "float", "MW/s", None, "Fleet GPU ramp-down rate; omit: the meter limit.",
           min=0.0, max=1e5, min_exclusive=True, source="NVML RAMP_DOWN_RATE (docs/power.md)"),
        _k("throttle", "bool", "-", True, "Allow throttling the training jobs as a last resort."),
        _k("event_delta_mw", "float", "MW", 50.0, "Configurable destabilising-event rule: a change of more than "
           "this ... (the DCPI rule, > 50 MW in < 1 s, is always reported too).", min=0.0, max=1e5,
           min_exclusive=True, source="DCPI §3 (default)"),
        _k("event_within_s", "float", "s", 1.0, "... within less than this.", min=0.0, max=3600.0,
           min_exclusive=True, source="DCPI §3 (default)"),
    ),
    "distribution": (
        _k("redundancy", "str", "-", "N+1", "Utility -> transformers -> UPS -> PDUs -> circuits (racks), built by "
           "twin.facility.distribution.standard_topology. Power study: racks carry the placed workloads; facility "
           "run (no [training]): the IT load spread evenly over the circuits, which must carry the design IT "
           "power (docs/power.md).", choices=("N+1", "2N")),
        _k("circuits", "int", "-", REQUIRED, "Number of rack circuits (each a Rack element with its PSUs).",
           min=1, max=10_000),
        _k("circuit_capacity_mw", "float", "MW", REQUIRED, "Capacity (AC input) of each circuit; also its PSU "
           "rating.", min=0.0, max=1e4, min_exclusive=True),
        _k("circuits_per_pdu", "int", "-", 10, "Circuits per PDU.", min=1, max=10_000),
        _k("transformer_mva", "float", "MVA", 2.5, "Rating of each transformer; losses scale from the 2.5 MVA "
           "Tier 2 figures.", min=0.0, max=1e4, min_exclusive=True,
           source="REFERENCE.md §8.4 (placeholder, unverified)"),
        _k("ups_mw", "float", "MW", 1.0, "Rating of each UPS module.", min=0.0, max=1e4, min_exclusive=True),
        _k("ups_mode", "str", "-", "double_conversion", "UPS operating mode.", choices=("double_conversion", "eco"),
           source="REFERENCE.md §8.5"),
        _k("psu_curve", "str", "-", "80plus_titanium", "Server PSU efficiency curve.",
           choices=("80plus_titanium", "80plus_platinum"), source="REFERENCE.md §8.3"),
        _k("design_margin", "float", "-", 1.0, "N is sized for circuits x circuit capacity x this.", min=0.0,
           max=10.0, min_exclusive=True),
        _k("utility_capacity_mw", "float", "MW", None, "Connection capacity at the meter; omit: the installed "
           "transformer capacity (N units, or one side for 2N).", min=0.0, max=1e5, min_exclusive=True),
    ),
    "faults": (
        _k("element", "str", "-", REQUIRED, "Array of tables: one [[faults]] per switching event (power study). "
           "Distribution element (meter, T<i>, UPS<i>, PDU<i>, R<i>; 2N: TA0, UPSB1, ...)."),
        _k("t_s", "float", "s", REQUIRED, "Time, seconds after the start.", min=0.0),
        _k("action", "str", "-", "fail", "Fail the element or restore it (a restore needs an earlier fail).",
           choices=("fail", "restore")),
        _k("reason", "str", "-", "", "Free text, copied into the logs."),
    ),
    "grid_events": (
        _k("t_s", "float", "s", REQUIRED, "Array of tables: one [[grid_events]] per grid emergency signal "
           "(power study; DCPI §6.2.1 b, d). Time the signal arrives.", min=0.0),
        _k("reduction_mw", "float", "MW", REQUIRED, "Import reduction asked for at the meter; met by shedding "
           "workloads lowest priority first (critical never).", min=0.0, max=1e5, min_exclusive=True),
        _k("duration_s", "float", "s", REQUIRED, "How long the reduction is held; then shed work resumes.",
           min=0.0, min_exclusive=True),
        _k("deadline_s", "float", "s", 30.0, "Time allowed to deliver the reduction (reported met or not).",
           min=0.0, min_exclusive=True, source="assumption"),
        _k("reason", "str", "-", "", "Free text, copied into the logs."),
    ),
}


@dataclass(frozen=True)
class Facility:
    nodes: int
    gpus_per_node: int
    hosts_per_node: int
    gpu_model: str
    gpu_power_cap_w: float
    gpu_sm_clock_mhz: float | None
    host_idle_w: float
    host_busy_w: float

    @property
    def gpu(self) -> GpuProfile:
        return GPU_PROFILES[self.gpu_model]

    @property
    def design_it_power_w(self) -> float:
        """Nameplate IT power: every GPU at its cap, every host busy [W]."""
        return self.nodes * self.hosts_per_node * (self.gpus_per_node * self.gpu_power_cap_w + self.host_busy_w)


@dataclass(frozen=True)
class Cooling:
    """The cooling plant model and its parameters (validated against its schema rows)."""

    model: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Weather:
    model: str
    site: str | None
    depression_swing_fraction: float | None
    dry_bulb_mean_c: float | None
    dry_bulb_range_k: float | None
    wet_bulb_mean_c: float | None
    wet_bulb_range_k: float | None
    peak_hour_utc: float


@dataclass(frozen=True)
class Workload:
    source: str
    offered_load: float | None
    path: str | None
    trace_start: datetime | None
    rebase: bool | None
    flexible_fraction: float
    deadline_slack_min: float
    deadline_slack_max: float
    scheduler: str
    compute_bound_share: float
    memory_bound_share: float
    bursty_share: float
    warmup_h: float

    @property
    def class_shares(self) -> tuple[float, float, float]:
        """Shares in the order of :data:`twin.physics.gpu.WORKLOADS`."""
        return (self.compute_bound_share, self.memory_bound_share, self.bursty_share)


@dataclass(frozen=True)
class Grid:
    country: str
    carbon_source: str
    constant_intensity_g_per_kwh: float | None
    constant_carbon_free_fraction: float | None
    carbon_file: str | None


@dataclass(frozen=True)
class Battery:
    model: str
    capacity_kwh: float | None
    max_charge_kw: float | None
    max_discharge_kw: float | None
    soc_min: float | None
    soc_max: float | None
    initial_soc: float | None
    round_trip_efficiency: float | None
    temp_c: float | None
    peak_shaving_import_kw: float | None
    max_ramp_kw_per_s: float | None
    ffr_reserve_kw: float | None
    fcr_d_reserve_kw: float | None
    recharge_kw: float | None


@dataclass(frozen=True)
class Heat:
    model: str
    heat_pump_capacity_kw: float | None
    annual_demand_mwh: float | None
    base_load_fraction: float | None
    degree_day_base_c: float | None
    supply_setpoint_c: float | None
    return_temp_c: float | None
    tank_volume_m3: float | None
    tank_ua_w_per_k: float | None
    meter_permanent_flow_m3_per_h: float | None
    meter_class: int | None


@dataclass(frozen=True)
class Frequency:
    source: str
    ffr_dips: int | None
    dip_nadir_hz: float | None
    ffr_level_hz: float | None
    ffr_support_s: float | None
    log_tick_s: float | None
    log_pre_s: float | None
    log_post_s: float | None


@dataclass(frozen=True)
class Control:
    tier2: str
    tier2_period_s: float | None
    tier2_memory_s: float | None
    ffr_gpu: str
    reserve_band: float | None
    island_latency: str | None
    table_refresh_s: float | None
    tier3: str
    ffr_commitment_kw: float | None
    ffr_min_commitment_kw: float | None
    tier3_forecast: str | None
    scheduler: str
    scheduler_signal: str | None
    scheduler_forecast: str | None
    tier1: str | None


@dataclass(frozen=True)
class Outputs:
    per_host_series: bool
    overview_png: bool


@dataclass(frozen=True)
class TrainingJob:
    name: str
    peak_mw: float
    start_s: float
    duration_s: float | None
    priority: str
    announce_lead_s: float
    swing_fraction: float
    period_s: float
    compute_duty: float
    edge_ramp_s: float
    checkpoint_interval_s: float
    checkpoint_duration_s: float
    checkpoint_power_fraction: float
    data_load_interval_s: float
    data_load_duration_s: float
    data_load_power_fraction: float

    def power_params(self, end_s: float) -> TrainingPowerParams:
        """The job's :class:`traces.training.TrainingPowerParams` (SI); runs to ``end_s`` if no duration."""
        end = end_s if self.duration_s is None else self.start_s + self.duration_s
        return TrainingPowerParams(
            peak_power_w=self.peak_mw * 1e6, swing_fraction=self.swing_fraction, period_s=self.period_s,
            compute_duty=self.compute_duty, edge_ramp_s=self.edge_ramp_s,
            checkpoint_interval_s=self.checkpoint_interval_s, checkpoint_duration_s=self.checkpoint_duration_s,
            checkpoint_power_fraction=self.checkpoint_power_fraction,
            data_load_interval_s=self.data_load_interval_s, data_load_duration_s=self.data_load_duration_s,
            data_load_power_fraction=self.data_load_power_fraction, start_s=self.start_s, end_s=end)


@dataclass(frozen=True)
class Training:
    base_it_mw: float
    base_priority: str
    critical_it_mw: float
    chiller_units: int
    chiller_start_delay_s: float
    staging_margin: float
    cooling_lead_s: float
    jobs: tuple[TrainingJob, ...] = ()


@dataclass(frozen=True)
class Smoothing:
    max_ramp_mw_per_s: float
    lowpass_s: float
    target_soc: float
    soc_restore_s: float
    floor_mw: float
    gpu_ramp_down_mw_per_s: float | None
    throttle: bool
    event_delta_mw: float
    event_within_s: float


@dataclass(frozen=True)
class Distribution:
    redundancy: str
    circuits: int
    circuit_capacity_mw: float
    circuits_per_pdu: int
    transformer_mva: float
    ups_mw: float
    ups_mode: str
    psu_curve: str
    design_margin: float
    utility_capacity_mw: float | None

    def build(self):
        """The topology (:func:`twin.facility.distribution.standard_topology`)."""
        from twin.facility.distribution import standard_topology

        return standard_topology(
            self.circuits, self.circuit_capacity_mw * 1e6, racks_per_pdu=self.circuits_per_pdu,
            redundancy=self.redundancy, transformer_rated_va=self.transformer_mva * 1e6,
            ups_capacity_w=self.ups_mw * 1e6, design_margin=self.design_margin,
            utility_capacity_w=None if self.utility_capacity_mw is None else self.utility_capacity_mw * 1e6,
            ups_mode=self.ups_mode, psu_curve=self.psu_curve)


@dataclass(frozen=True)
class Fault:
    element: str
    t_s: float
    action: str
    reason: str


@dataclass(frozen=True)
class GridEvent:
    t_s: float
    reduction_mw: float
    duration_s: float
    deadline_s: float
    reason: str


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Times are seconds since ``start`` inside the engine."""

    name: str
    description: str
    start: datetime
    duration_h: float
    base_tick_s: float
    seed: int
    facility: Facility
    cooling: Cooling
    weather: Weather
    workload: Workload
    grid: Grid
    outputs: Outputs
    battery: Battery
    heat: Heat
    frequency: Frequency
    control: Control
    training: Training | None = None  # set: a power study (twin/sim/power_study.py)
    smoothing: Smoothing | None = None
    distribution: Distribution | None = None  # without training: facility-run distribution losses
    faults: tuple[Fault, ...] = ()
    grid_events: tuple[GridEvent, ...] = ()
    source_path: str = ""
    sha256: str = field(default="", compare=False)

    @property
    def duration_s(self) -> float:
        return self.duration_h * 3600.0

    @property
    def n_ticks(self) -> int:
        return int(round(self.duration_s / self.base_tick_s))


_SECTION_CLASSES = {"facility": Facility, "cooling": Cooling, "weather": Weather,
                    "workload": Workload, "grid": Grid, "outputs": Outputs, "battery": Battery, "heat": Heat,
                    "frequency": Frequency, "control": Control}


def _coerce(key: Key, value: Any, path: str) -> tuple[Any, str | None]:
    """Return (value, None) or (None, problem) for one key."""
    # show the value as it looks in TOML (true, 2025-07-15), not as a Python repr
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, (date, time)):
        shown = value.isoformat()
    else:
        shown = repr(value)
    bad = f"{path} = {shown}: expected {key.expected()}"
    if key.kind == "bool":
        return (value, None) if isinstance(value, bool) else (None, bad)
    if key.kind == "str":
        if not isinstance(value, str):
            return None, bad
        if key.choices and value not in key.choices:
            near = difflib.get_close_matches(value, key.choices, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            return None, bad + hint
        return value, None
    if key.kind == "datetime":
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return None, bad
        if not isinstance(value, datetime):
            return None, bad
        if value.tzinfo is None:
            return None, f"{path} = {shown}: has no UTC offset; expected {key.expected()}"
        return value.astimezone(timezone.utc), None
    # numbers: bool is an int subclass in Python and must not pass as a number
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, bad
    if key.kind == "int" and not isinstance(value, int):
        return None, bad
    if isinstance(value, float) and not math.isfinite(value):
        return None, bad
    lo_ok = key.min is None or (value > key.min if key.min_exclusive else value >= key.min)
    hi_ok = key.max is None or value <= key.max
    if not (lo_ok and hi_ok):
        return None, bad
    return (int(value) if key.kind == "int" else float(value)), None


def _parse_table(raw: Any, keys: tuple[Key, ...], prefix: str, problems: list[str]) -> dict[str, Any]:
    """Parse one table. Keys with ``when`` apply only for some values of a selector key
    parsed before them; a name may appear in several rows with disjoint ``when``."""
    if not isinstance(raw, dict):
        problems.append(f"{prefix or '<top level>'} = {raw!r}: expected a table ([{prefix}])")
        return {}
    known = {k.name for k in keys}
    out: dict[str, Any] = {}
    for name in raw:
        if name not in known and not (prefix == "" and name in SCHEMA):
            candidates = sorted(known) + ([s for s in SCHEMA if s] if prefix == "" else [])
            near = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(sorted(candidates))}"
            problems.append(f"{prefix + '.' if prefix else ''}{name}: unknown key{hint}")
    applied: set[str] = set()
    not_applied: dict[str, tuple[str, list[str], Any]] = {}
    for key in keys:
        path = f"{prefix}.{key.name}" if prefix else key.name
        if key.when is not None:
            selector, applies_to = key.when
            chosen = out.get(selector)
            if chosen not in applies_to:
                entry = not_applied.setdefault(key.name, (selector, [], chosen))
                entry[1].extend(applies_to)
                continue
        applied.add(key.name)
        if key.name not in raw:
            if key.default is REQUIRED:
                problems.append(f"{path}: missing; expected {key.expected()} ({key.description.rstrip('.')})")
            else:
                out[key.name] = key.default
            continue
        value, problem = _coerce(key, raw[key.name], path)
        if problem:
            problems.append(problem)
        else:
            out[key.name] = value
    for name, (selector, applies_to, chosen) in not_applied.items():
        if name in applied:
            continue
        out[name] = None
        if chosen is not None and name in raw:
            path = f"{prefix}.{name}" if prefix else name
            problems.append(f"{path}: only used when {prefix}.{selector} is "
                            f"{' or '.join(repr(v) for v in applies_to)} (it is {chosen!r}); remove it")
    return out


def applicable_keys(section: str, table: dict[str, Any]) -> list[Key]:
    """The schema rows of ``section`` that apply given the parsed selector values in ``table``."""
    return [k for k in SCHEMA[section] if k.when is None or table.get(k.when[0]) in k.when[1]]


def _cross_checks(top: dict, sec: dict[str, dict], problems: list[str], source_dir: Path | None = None) -> None:
    """Checks that involve more than one key (only where each key parsed)."""
    name = top.get("name")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        problems.append(f"name = {name!r}: expected 1-100 letters, digits, '.', '_' or '-', starting with a "
                        f"letter or digit (it names the results folder)")
    tick = top.get("base_tick_s")
    if tick is not None:
        per_hour = 3600.0 / tick
        tick_ok = abs(per_hour - round(per_hour)) <= 1e-6 * per_hour
        if not tick_ok:
            problems.append(f"base_tick_s = {tick!r}: expected a tick that divides one hour evenly "
                            f"(e.g. 0.1, 0.5, 1, 5, 60) [s]")
        dur = top.get("duration_h")
        if dur is not None and tick_ok:  # a bad tick would make this a knock-on complaint
            n = dur * 3600.0 / tick
            if abs(n - round(n)) > 1e-6 * max(n, 1.0):
                problems.append(f"duration_h = {dur!r}: expected a whole number of base ticks "
                                f"({tick:g} s) [h]")
    fac = sec.get("facility", {})
    model = GPU_PROFILES.get(fac.get("gpu_model", ""))
    if model is not None and "gpu_power_cap_w" in fac:
        cap = fac["gpu_power_cap_w"]
        if cap is None:
            fac["gpu_power_cap_w"] = model.max_limit_w
        elif not model.min_limit_w <= cap <= model.max_limit_w:
            problems.append(f"facility.gpu_power_cap_w = {cap!r}: expected a number within the "
                            f"{model.name} power-limit range {model.min_limit_w:g}-{model.max_limit_w:g} [W]")
    if fac.get("host_busy_w") is not None and fac.get("host_idle_w") is not None:
        if fac["host_busy_w"] < fac["host_idle_w"]:
            problems.append(f"facility.host_busy_w = {fac['host_busy_w']!r}: expected a number >= "
                            f"facility.host_idle_w ({fac['host_idle_w']:g}) [W]")
    wl = sec.get("workload", {})
    if None not in (wl.get("deadline_slack_min"), wl.get("deadline_slack_max")) and \
            wl["deadline_slack_max"] < wl["deadline_slack_min"]:
        problems.append(f"workload.deadline_slack_max = {wl['deadline_slack_max']!r}: expected a number >= "
                        f"workload.deadline_slack_min ({wl['deadline_slack_min']:g}) [-]")
    for section, key in (("workload", "path"), ("grid", "carbon_file")):
        table = sec.get(section, {})
        if table.get(key) is not None:
            base = source_dir if source_dir is not None else Path.cwd()
            resolved = (base / table[key]).resolve()
            if not resolved.is_file():
                problems.append(f"{section}.{key} = {table[key]!r}: no such file ({resolved}); relative paths start "
                                f"at the scenario file's folder")
            else:
                table[key] = str(resolved)
    shares = [wl.get(k) for k in ("compute_bound_share", "memory_bound_share", "bursty_share")]
    if None not in shares and abs(sum(shares) - 1.0) > 1e-9:
        problems.append(f"workload.bursty_share = {shares[2]!r}: expected compute_bound_share + memory_bound_share "
                        f"+ bursty_share = 1 (they sum to {sum(shares):g}) [-]")
    bat = sec.get("battery", {})
    if bat.get("model") == "lfp" and None not in (bat.get("soc_min"), bat.get("soc_max"), bat.get("initial_soc")):
        if not bat["soc_min"] < bat["soc_max"]:
            problems.append(f"battery.soc_max = {bat['soc_max']!r}: expected a number above battery.soc_min "
                            f"({bat['soc_min']:g}) [-]")
        elif not bat["soc_min"] <= bat["initial_soc"] <= bat["soc_max"]:
            problems.append(f"battery.initial_soc = {bat['initial_soc']!r}: expected a number within the SoC window "
                            f"{bat['soc_min']:g}-{bat['soc_max']:g} [-]")
    heat = sec.get("heat", {})
    if heat.get("model") == "district_heating":
        cooling_model = sec.get("cooling", {}).get("model")
        if cooling_model is not None and cooling_model != "dlc_warm_water":
            problems.append(f"heat.model = 'district_heating': needs cooling.model = 'dlc_warm_water' (the heat "
                            f"pump draws on the warm-water return); cooling.model is {cooling_model!r}")
        sup, ret = heat.get("supply_setpoint_c"), heat.get("return_temp_c")
        if sup is not None and ret is not None and not ret + 3.0 <= sup:
            problems.append(f"heat.return_temp_c = {ret!r}: expected at least 3 K below heat.supply_setpoint_c "
                            f"({sup:g}) (the meter's minimum temperature difference) [degC]")
    fr = sec.get("frequency", {})
    if fr.get("source") == "synthetic":
        if fr.get("ffr_level_hz") is not None and fr["ffr_level_hz"] not in (49.7, 49.6, 49.5):
            problems.append(f"frequency.ffr_level_hz = {fr['ffr_level_hz']!r}: expected one of 49.7, 49.6, 49.5 "
                            f"(the Nordic FFR levels) [Hz]")
        if fr.get("ffr_support_s") is not None and fr["ffr_support_s"] not in (5.0, 30.0):
            problems.append(f"frequency.ffr_support_s = {fr['ffr_support_s']!r}: expected 5 or 30 (the Nordic FFR "
                            f"support durations) [s]")
        if None not in (fr.get("dip_nadir_hz"), fr.get("ffr_level_hz")) and not fr["dip_nadir_hz"] < fr["ffr_level_hz"]:
            problems.append(f"frequency.dip_nadir_hz = {fr['dip_nadir_hz']!r}: expected below frequency.ffr_level_hz "
                            f"({fr['ffr_level_hz']:g}) so that each dip triggers FFR [Hz]")
        lt = fr.get("log_tick_s")
        if lt is not None and tick is not None:
            n = tick / lt
            if lt > tick or abs(n - round(n)) > 1e-6 * n:
                problems.append(f"frequency.log_tick_s = {lt!r}: expected a tick that divides base_tick_s "
                                f"({tick:g} s) evenly [s]")
        dips, dur = fr.get("ffr_dips"), top.get("duration_h")
        if dips is not None and dur is not None and dips * 900.0 > dur * 3600.0:
            problems.append(f"frequency.ffr_dips = {dips!r}: expected at most {int(dur * 3600.0 // 900.0)} in "
                            f"{dur:g} h (FFR re-arms 15 min after an activation)")
    ctl = sec.get("control", {})
    if ctl.get("ffr_gpu") == "island" and fr.get("source") != "synthetic":
        problems.append("control.ffr_gpu = 'island': expected [frequency] source = 'synthetic' (the island "
                        "answers FFR triggers; without a frequency signal there are none)")
    if ctl.get("tier3") not in (None, "none") and ctl.get("ffr_commitment_kw") and ctl.get("ffr_gpu") != "island":
        problems.append(f"control.ffr_commitment_kw = {ctl['ffr_commitment_kw']!r}: expected 0 unless "
                        "control.ffr_gpu = 'island' (the island delivers the reserve Tier 3 commits)")
    tick_ok = tick is not None and abs(3600.0 / tick - round(3600.0 / tick)) < 1e-9
    if (ctl.get("tier3") not in (None, "none") or ctl.get("scheduler") not in (None, "none")) and not tick_ok:
        problems.append(f"base_tick_s = {tick!r}: expected a tick that divides an hour when control.tier3 or "
                        "control.scheduler is on (they act on the hour) [s]")
    per = ctl.get("tier2_period_s")
    if per is not None and tick is not None:
        ratio = per / tick if per >= tick else tick / per
        if abs(ratio - round(ratio)) > 1e-6 * ratio:
            problems.append(f"control.tier2_period_s = {per!r}: expected a whole multiple or an even divisor of "
                            f"base_tick_s ({tick:g} s) [s]")
    mem = ctl.get("tier2_memory_s")
    if per is not None and mem is not None and not mem >= 2.0 * per:
        problems.append(f"control.tier2_memory_s = {mem!r}: expected at least twice control.tier2_period_s "
                        f"({per:g} s), so that the forgetting factor is >= 0.5 [s]")
    cool = sec.get("cooling", {})
    zero_at, full_at = cool.get("free_cooling_zero_at_dry_bulb_c"), cool.get("free_cooling_full_at_wet_bulb_c")
    if zero_at is not None and full_at is not None and full_at >= zero_at:
        problems.append(f"cooling.free_cooling_full_at_wet_bulb_c = {full_at!r}: expected a number below "
                        f"cooling.free_cooling_zero_at_dry_bulb_c ({zero_at:g}) [degC]")
    w = sec.get("weather", {})
    names = ("dry_bulb_mean_c", "dry_bulb_range_k", "wet_bulb_mean_c", "wet_bulb_range_k")
    if all(w.get(n) is not None for n in names) and not wet_bulb_never_exceeds_dry_bulb(*(w[n] for n in names)):
        problems.append(f"weather.wet_bulb_mean_c = {w['wet_bulb_mean_c']!r}: expected the wet-bulb cycle to stay "
                        f"at or below the dry-bulb cycle at every hour (mean gap >= half the difference of ranges) "
                        f"[degC]")


_POWER_SECTIONS = ("training", "smoothing", "distribution", "faults", "grid_events")


def _parse_array(raw: Any, section: str, problems: list[str]) -> list[dict]:
    """Parse an array of tables (``[[section]]``), each element against ``SCHEMA[section]``."""
    if isinstance(raw, dict):
        problems.append(f"[{section}]: expected an array of tables, written [[{section}]]")
        return []
    if not isinstance(raw, list):
        problems.append(f"{section} = {raw!r}: expected an array of tables, written [[{section}]]")
        return []
    return [_parse_table(item, SCHEMA[section], f"{section}[{i}]", problems) for i, item in enumerate(raw)]


def _parse_power_study(raw: dict, top: dict, sec: dict[str, dict], problems: list[str]) -> dict[str, Any]:
    """Parse the power-study sections (issue 8) and check them together; {} when there are none."""
    present = [s for s in _POWER_SECTIONS if s in raw]
    if not present:
        return {}
    if "training" not in raw:
        others = [s for s in present if s != "distribution"]
        if others:
            problems.append(f"[{others[0]}]: only used by a power study; add a [training] table with at least one "
                            f"[[training.jobs]], or remove it")
            return {}
        return _parse_facility_distribution(raw["distribution"], sec, problems)
    tr_raw = raw["training"]
    if not isinstance(tr_raw, dict):
        problems.append(f"training = {tr_raw!r}: expected a table ([training])")
        return {}
    n0 = len(problems)
    training = _parse_table({k: v for k, v in tr_raw.items() if k != "jobs"}, SCHEMA["training"], "training",
                            problems)
    jobs = _parse_array(tr_raw.get("jobs", []), "training.jobs", problems)
    if "jobs" not in tr_raw or not jobs:
        problems.append("[[training.jobs]]: missing; expected at least one table with keys name, peak_mw")
    smoothing = _parse_table(raw.get("smoothing", {}), SCHEMA["smoothing"], "smoothing", problems)
    if "distribution" not in raw:
        problems.append("[distribution]: missing table; a power study needs one with keys circuits, "
                        "circuit_capacity_mw")
    dist = _parse_table(raw.get("distribution", {}), SCHEMA["distribution"], "distribution", problems)
    faults = _parse_array(raw.get("faults", []), "faults", problems)
    events = _parse_array(raw.get("grid_events", []), "grid_events", problems)
    if len(problems) > n0:
        return {}
    _power_study_cross_checks(top, sec, training, jobs, dist, faults, events, problems)
    if len(problems) > n0:
        return {}
    return {"training": Training(**training, jobs=tuple(TrainingJob(**j) for j in jobs)),
            "smoothing": Smoothing(**smoothing), "distribution": Distribution(**dist),
            "faults": tuple(Fault(**f) for f in faults), "grid_events": tuple(GridEvent(**e) for e in events)}


def _parse_facility_distribution(raw: Any, sec: dict[str, dict], problems: list[str]) -> dict[str, Any]:
    """A facility run's [distribution] (no [training]): the topology must carry the design IT power."""
    n0 = len(problems)
    dist = _parse_table(raw, SCHEMA["distribution"], "distribution", problems)
    if len(problems) > n0:
        return {}
    try:
        topology = Distribution(**dist).build()
    except ValueError as exc:
        problems.append(f"[distribution]: {exc}")
        return {}
    fac = sec.get("facility", {})
    keys = ("nodes", "gpus_per_node", "gpu_power_cap_w", "host_busy_w")
    if any(fac.get(k) is None for k in keys):
        return {}  # [facility] has its own problems, already reported
    design_w = (fac["nodes"] * (fac.get("hosts_per_node") or 1)
                * (fac["gpus_per_node"] * fac["gpu_power_cap_w"] + fac["host_busy_w"]))
    n = len(topology.racks)
    flows = topology.compute({r: design_w / n for r in topology.racks})
    over = flows.overloaded
    if over:
        kinds = {topology.elements[e].kind for e in over}
        if kinds & {"rack", "pdu"}:
            key, hint = "circuit_capacity_mw", "more circuits or a larger circuit_capacity_mw"
        elif kinds & {"transformer", "ups"}:
            key, hint = "design_margin", "a larger design_margin (more units), transformer_mva or ups_mw"
        else:
            key, hint = "utility_capacity_mw", "a larger utility_capacity_mw (or omit it)"
        shown = ", ".join(over[:5]) + (f" and {len(over) - 5} more" if len(over) > 5 else "")
        problems.append(
            f"distribution.{key} = {dist[key]!r}: the topology cannot carry the facility's design IT power "
            f"({design_w / 1e6:.6g} MW, spread evenly over {n} circuits: {design_w / n / 1e6:.6g} MW each at the "
            f"PSU output, {float(flows.meter_w) / 1e6:.6g} MW at the meter); overloaded: {shown}; expected {hint}")
        return {}
    return {"distribution": Distribution(**dist)}


def _power_study_cross_checks(top, sec, training, jobs, dist, faults, events, problems) -> None:
    """Checks across the power-study sections (each section parsed without problems)."""
    tick, dur_h = top.get("base_tick_s"), top.get("duration_h")
    if tick is not None:
        n = 0.1 / tick
        if tick > 0.1 + 1e-12 or abs(n - round(n)) > 1e-6 * n:
            problems.append(f"base_tick_s = {tick!r}: expected a tick that divides 0.1 s evenly in a power study "
                            f"(the meter is judged on 100 ms averages, DCPI §7.1.2 a) [s]")
    dur_s = None if dur_h is None else dur_h * 3600.0
    names = [j["name"] for j in jobs]
    for i, j in enumerate(jobs):
        if not j["name"] or names.index(j["name"]) != i:
            problems.append(f"training.jobs[{i}].name = {j['name']!r}: expected a unique, non-empty name")
        if dur_s is not None and j["start_s"] >= dur_s:
            problems.append(f"training.jobs[{i}].start_s = {j['start_s']!r}: expected before the end of the run "
                            f"({dur_s:g} s) [s]")
        try:
            TrainingJob(**j).power_params(end_s=math.inf)
        except ValueError as exc:
            problems.append(f"training.jobs[{i}]: {exc}")
    fac = sec.get("facility", {})
    if None not in (fac.get("nodes"), fac.get("gpus_per_node"), fac.get("gpu_power_cap_w"), fac.get("host_busy_w")):
        design_w = (fac["nodes"] * (fac.get("hosts_per_node") or 1)
                    * (fac["gpus_per_node"] * fac["gpu_power_cap_w"] + fac["host_busy_w"]))
        peak_w = (sum(j["peak_mw"] for j in jobs) + training["base_it_mw"] + training["critical_it_mw"]) * 1e6
        if peak_w > design_w:
            problems.append(f"facility.nodes = {fac['nodes']!r}: the facility's nameplate IT power "
                            f"({design_w / 1e6:.6g} MW, which sizes the cooling plant) is below the power study's "
                            f"peak IT ({peak_w / 1e6:.6g} MW: jobs + base + critical); expected at least that much")
    try:
        topology = Distribution(**dist).build()
    except ValueError as exc:
        problems.append(f"[distribution]: {exc}")
        return
    failed: set[str] = set()
    for i, f in sorted(enumerate(faults), key=lambda x: (x[1]["t_s"], x[0])):
        if f["element"] not in topology.elements:
            near = difflib.get_close_matches(f["element"], list(topology.elements), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"the topology has {len(topology.elements)} elements"
            problems.append(f"faults[{i}].element = {f['element']!r}: no such distribution element; {hint}")
        elif f["action"] == "restore" and f["element"] not in failed:
            problems.append(f"faults[{i}].action = 'restore': {f['element']!r} has not failed before "
                            f"t = {f['t_s']:g} s; expected a [[faults]] fail earlier")
        elif f["action"] == "fail" and f["element"] in failed:
            problems.append(f"faults[{i}].action = 'fail': {f['element']!r} has already failed")
        (failed.add if f["action"] == "fail" else failed.discard)(f["element"])
        if dur_s is not None and f["t_s"] >= dur_s:
            problems.append(f"faults[{i}].t_s = {f['t_s']!r}: expected before the end of the run ({dur_s:g} s) [s]")
    for i, e in enumerate(events):
        if dur_s is not None and e["t_s"] >= dur_s:
            problems.append(f"grid_events[{i}].t_s = {e['t_s']!r}: expected before the end of the run "
                            f"({dur_s:g} s) [s]")


def parse_scenario(raw: dict, path: str = "<scenario>", sha256: str = "") -> Scenario:
    """Validate a parsed TOML document into a :class:`Scenario` (raises ScenarioError)."""
    problems: list[str] = []
    top = _parse_table(raw, SCHEMA[""], "", problems)
    sections: dict[str, dict] = {}
    for name in _SECTION_CLASSES:
        required = [k.name for k in SCHEMA[name] if k.default is REQUIRED and k.when is None]
        if name not in raw and required:
            problems.append(f"[{name}]: missing table; expected one with keys {', '.join(required)}")
            continue
        sections[name] = _parse_table(raw.get(name, {}), SCHEMA[name], name, problems)
    source_dir = Path(path).resolve().parent if not path.startswith("<") else None
    _cross_checks(top, sections, problems, source_dir)
    power = _parse_power_study(raw, top, sections, problems)
    if problems:
        raise ScenarioError(path, problems)
    cool = sections["cooling"]
    sections["cooling"] = {"model": cool["model"],
                           "params": {k.name: cool[k.name] for k in applicable_keys("cooling", cool)
                                      if k.name != "model"}}
    objs = {name: cls(**sections[name]) for name, cls in _SECTION_CLASSES.items()}
    return Scenario(**top, **objs, **power, source_path=path, sha256=sha256)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file (raises ScenarioError, never a bare traceback)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(str(p), [f"cannot read file: {exc.strerror or exc}"]) from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(p), [f"not UTF-8 text: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(p), [f"not valid TOML: {exc}"]) from None
    return parse_scenario(raw, str(p), hashlib.sha256(data).hexdigest())


def schema_markdown() -> str:
    """The scenario reference page (docs/scenario.md), generated from :data:`SCHEMA`."""
    lines = [
        "# Scenario file reference",
        "",
        "Generated from `twin/scenario.py` (`python -m twin.scenario > docs/scenario.md`); "
        "a test fails when this page is stale.",
        "",
        "Scenarios are TOML. Units are in the key names (SI, plus `_h` for hours, `_c` for °C, `_k` for kelvin).",
        "Unknown keys are rejected with the nearest valid key suggested. `required` marks keys with no default.",
        "",
    ]
    for section, keys in SCHEMA.items():
        lines += [f"## {'top level' if not section else '[' + section + ']'}", "",
                  "| key | type | unit | default | allowed | used when | meaning | source of default |",
                  "|---|---|---|---|---|---|---|---|"]
        for k in keys:
            default = "required" if k.default is REQUIRED else ("—" if k.default is None else repr(k.default))
            allowed = k.expected()
            used = "always" if k.when is None else f"`{k.when[0]}` = " + " or ".join(f"`{v}`" for v in k.when[1])
            lines.append(f"| `{k.name}` | {k.kind} | {k.unit} | {default} | {allowed} | {used} | {k.description} | "
                         f"{k.source or '—'} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - documentation generator
    print(schema_markdown())
