"""The ``gridtwin`` command line.

Exit codes: 0 success, 1 a run failed, 2 usage error or invalid input (argparse's
convention). Errors are one-line messages on stderr, never tracebacks, for problems
the user can fix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _cmd_validate(args: argparse.Namespace) -> int:
    from twin.scenario import ScenarioError, load_scenario

    status = EXIT_OK
    for path in args.files:
        try:
            sc = load_scenario(path)
        except ScenarioError as exc:
            print(str(exc), file=sys.stderr)
            status = EXIT_USAGE
            continue
        print(f"ok: {path} (name={sc.name!r}, {sc.duration_h:g} h at {sc.base_tick_s:g} s = "
              f"{sc.n_ticks} ticks, {sc.facility.nodes} nodes x {sc.facility.gpus_per_node} "
              f"{sc.facility.gpu_model})")
    return status


def _cmd_run(args: argparse.Namespace) -> int:
    from twin.scenario import ScenarioError, load_scenario
    from twin.facility.balance import EnergyBalanceError
    from twin.sim.engine import InputDataError
    from twin.sim.results import ResultsExistError, run_to_folder

    try:
        sc = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    try:
        folder = run_to_folder(sc, Path(args.out), force=args.force, progress=not args.no_progress)
    except ResultsExistError as exc:
        print(f"gridtwin run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("gridtwin run: interrupted; no results folder was written", file=sys.stderr)
        return 130
    except EnergyBalanceError as exc:
        print(f"gridtwin run: {exc}; no results folder was written", file=sys.stderr)
        return EXIT_FAILED
    except InputDataError as exc:
        print(f"gridtwin run: {exc}; no results folder was written", file=sys.stderr)
        return EXIT_USAGE
    _print_summary(folder)
    _print_kernel_hint()
    return EXIT_OK


def _print_kernel_hint() -> None:
    """A line when this run compiled its kernels with numba's JIT because the AOT build is
    missing or stale (twin/aot.py): the same results, ~0.35 s more a run."""
    from twin import aot

    if "numba" in sys.modules and aot.kernels() is None:
        print(f"  compiled kernels: numba's JIT, ~0.35 s of start-up ({aot.status()[len('jit: '):]})")


def _cmd_calibrate_gpu(args: argparse.Namespace) -> int:
    import json

    from twin.calibrate import CalibrationDataError
    from twin.calibrate.gpu import calibrate_gpu, write_fit

    try:
        fit, report = calibrate_gpu(args.data)
    except CalibrationDataError as exc:
        print(f"gridtwin calibrate gpu: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report["written"] = str(write_fit(fit, report)) if args.write else None
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print(f"GPU model fitted on {report['data_dir']} ({report['cells']} E1 cells)")
    print(f"  mean power, leave-one-out MAE {report['loo_mae_pct']:.2f} % (cap-bound cells "
          f"{report['loo_mae_pct_cap_bound']:.2f} %, worst cell {report['loo_max_abs_pct']:.1f} %); by workload: "
          + ", ".join(f"{w} {v:.2f} %" for w, v in report["loo_mae_pct_by_workload"].items()))
    for w, b in report["best_efficiency"].items():
        m, d = b["model"], b["data_best_cell"]
        print(f"  best iterations/J {w}: model {m['iterations_per_joule']:.4f} at {m['cap_w']:g} W / "
              f"{m['sm_clock_mhz']:g} MHz; data {d['iterations_per_joule']:.4f} at {d['cap_w']:g} W / "
              f"{d['sm_clock_mhz']:g} MHz")
    dyn = report["step_response"]
    print(f"  cap steps: tau_down {dyn['tau_down_s'] * 1e3:.1f} ms, tau_up {dyn['tau_up_s'] * 1e3:.0f} ms "
          f"(measured 95 % first crossing: " + ", ".join(
              f"{s['label']} {s['t95_first_crossing_measured_s'] * 1e3:.0f} ms" for s in dyn["steps"]) + ")")
    th = report["thermal"]
    print(f"  thermal RC: R {th['r_th_k_per_w']:.4f} K/W, tau {th['tau_s']:g} s, ambient {th['ambient_c']:g} °C "
          f"(E1 rms {th['fit_rms_k_E1']['mean_over_traces']:.2f} K)")
    sk = report["skipped_lines"]
    skipped = ", ".join(f"{k} {v}" for k, v in sk["total"].items() if v) or "none"
    print(f"  telemetry: {sk['lines_read']} lines in {sk['files_read']} files; skipped: {skipped}")
    if report["written"]:
        print(f"  wrote {report['written']}")
    return EXIT_OK


def _cmd_ci_fetch(args: argparse.Namespace) -> int:
    from traces.entsoe import EntsoeFetchError, MissingTokenError, get_carbon_intensity

    try:
        data, meta = get_carbon_intensity(args.country, args.start, args.end, cache_dir=args.cache_dir,
                                          refresh=args.refresh, missing=args.missing)
    except (ValueError, MissingTokenError) as exc:
        print(f"gridtwin ci fetch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (EntsoeFetchError, OSError) as exc:
        print(f"gridtwin ci fetch: {exc}", file=sys.stderr)
        return EXIT_FAILED
    how = f"read from cache (fetched {meta.get('fetched_at', '?')})" if meta["from_cache"] else "fetched"
    print(f"{meta['cache_path']}  ({how})")
    print(f"  {meta['country']} (ENTSO-E {meta['zone']}) {meta['start']} to {meta['end']}: {len(data)} hours, "
          f"mean CI {data['carbon_intensity_g_per_kwh'].mean():.1f} gCO2eq/kWh, mean carbon-free fraction "
          f"{data['carbon_free_fraction'].mean():.3f}")
    return EXIT_OK


def _cmd_reproduce(args: argparse.Namespace, registry=None) -> int:
    from traces.synthetic import shared_data_dir
    from twin.reproduce.table import ReproduceUsageError, reproduce

    data = Path(args.data) if args.data is not None else shared_data_dir() / "v100_telemetry"
    try:
        result = reproduce(args.only, data, Path(args.out), seed=args.seed, registry=registry)
    except ReproduceUsageError as exc:
        print(f"gridtwin reproduce: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(result.markdown, end="")
    print(f"wrote {result.md_path} and {result.json_path}")
    return EXIT_OK if result.all_passed else EXIT_FAILED


def _fmt(value, spec: str) -> str:
    """``format(value, spec)``, or 'n/a' for a quantity the run could not define (None)."""
    return "n/a" if value is None else format(value, spec)


def _print_summary(folder: Path) -> None:
    import json

    s = json.loads((folder / "summary.json").read_text())
    print(f"results: {folder}  ({', '.join(s['outputs'])})")
    if s.get("power_study"):
        _print_power_study(s)
        return
    print(f"  IT energy {s['it_energy_kwh']:,.0f} kWh, facility {s['facility_energy_kwh']:,.0f} kWh, "
          f"PUE {s['pue_mean']:.3f} (tick max {s['pue_max']:.3f}), peak {s['peak_facility_power_kw']:,.0f} kW, "
          f"CO2 {s['co2_kg']:,.0f} kg")
    if s.get("electrical"):
        e = s["electrical"]
        print(f"  distribution losses {e['distribution_loss_kwh']:,.0f} kWh "
              f"({_fmt(e['loss_share_of_facility_energy'] and 100 * e['loss_share_of_facility_energy'], '.1f')} % of "
              f"facility; PUE without them {_fmt(e['pue_without_distribution_loss'], '.3f')}), PF mean "
              f"{_fmt(e['power_factor_mean'], '.3f')} (min {_fmt(e['power_factor_min'], '.3f')}), THD mean "
              f"{_fmt(e['thd_mean'], '.3f')}")
    if s.get("heat"):
        h = s["heat"]
        print(f"  heat delivered {h['heat_delivered_kwh']:,.0f} kWh (recovery efficiency "
              f"{_fmt(h['recovery_efficiency'], '.2f')}, ERE {_fmt(h['ere'], '.3f')}), meter MPE "
              f"{_fmt(h['heat_meter_mpe_pct'], '.2f')} % vs DCPI 2 %")
    if s.get("battery"):
        b = s["battery"]
        print(f"  battery throughput {b['throughput_kwh']:,.1f} kWh, losses {b['losses_kwh']:,.1f} kWh, "
              f"final SoC {b['final_soc']:.3f}")
    if s.get("ffr"):
        f = s["ffr"]
        met = {True: "all met their deadline", False: "NOT all met their deadline", None: "no reserve committed"}
        print(f"  FFR: {f['activations']} activations, {met[f['all_met_deadline']]}")
    print(f"  energy balance off by {s['energy_balance_rel_error']:.1e} (limit 1e-3); CFE share "
          f"{_fmt(s['cfe'], '.3f')}")
    print(f"  simulated {s['duration_h']:g} h at {s['base_tick_s']:g} s in {s['wall_s']:.2f} s "
          f"({s['real_time_factor']:,.0f}x real time), peak RSS {s['peak_rss_mb']:.0f} MB")


def _print_power_study(s: dict) -> None:
    """The result block of a power study (twin/sim/power_study.py)."""
    on, off = s["smoothing_on"], s["smoothing_off"]
    print(f"  power study: meter ramp limit {on['ramp_limit_mw_per_s']:g} MW/s on 100 ms averages")
    for label, v in (("smoothing on ", on), ("smoothing off", off)):
        bat = (f", battery throughput {v['battery_throughput_mwh']:.2f} MWh, SoC {v['soc_min']:.3f}-"
               f"{v['soc_max']:.3f}" if "battery_throughput_mwh" in v else "")
        print(f"  {label}: max ramp {v['max_meter_ramp_mw_per_s']:,.1f} MW/s, destabilising events "
              f"{v['destabilising_events_dcpi']} (DCPI) / {v['destabilising_events_configured']} "
              f"({v['configured_rule']}), floor {v['floor_energy_mwh']:.3f} MWh, throttled "
              f"{v['throttled_energy_mwh']:.3f} MWh{bat}, PUE {_fmt(v['pue'], '.3f')}")
    if "ageing_cost_usd_blast" in on:
        print(f"  battery ageing (smoothing on): {on['ageing_cost_usd_blast']:,.0f} USD (BLAST fade), "
              f"{on['ageing_cost_usd_throughput']:,.0f} USD (throughput)")
    pr = s["preparation"]
    jobs = pr["prepared"]["supply_overshoot"]["per_job_k"]
    over = ", ".join(f"{j} {_fmt(jobs[j], '.2f')} K prepared / "
                     f"{_fmt(pr['unprepared']['supply_overshoot']['per_job_k'][j], '.2f')} K not" for j in jobs)
    print(f"  coolant supply overshoot after job starts: {over or 'n/a'}; PF {on['power_factor_mean']:.3f}, "
          f"THD {on['thd_mean']:.3f}")
    sheds = [d for d in s["shedding"] if d["action"] == "shed"]
    print(f"  faults {len(s['switch_events'])}, grid events {len(s['grid_events']['smoothing_on'])}, "
          f"shedding decisions {len(sheds)} (critical never shed), unserved IT {s['unserved_it_energy_mwh']:.3f} MWh")
    print(f"  energy balance off by {s['energy_balance_rel_error']:.1e} (limit {s['energy_balance_tolerance']:g})")
    print(f"  simulated {s['duration_h']:g} h at {s['base_tick_s']:g} s x 3 variants in {s['wall_s']:.2f} s "
          f"({s['real_time_factor']:,.0f}x real time), peak RSS {s['peak_rss_mb']:.0f} MB")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridtwin",
        description="GridTwin: digital twin of a grid-responsive AI/HPC data centre.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "validate", help="check scenario files",
        description="Parse and validate scenario TOML files. Prints one 'ok:' line per valid "
                    "file; every problem in an invalid file goes to stderr with the file, key, "
                    "bad value and what was expected. Exit 0 if all are valid, 2 otherwise.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario TOML file(s)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "run", help="simulate a scenario and write results",
        description="Simulate SCENARIO and write OUT/<name>/ with timeseries.parquet "
                    "(facility-level series at the base tick), summary.json and overview.png "
                    "(plus hosts.parquet if the scenario asks for per-host series, and "
                    "ffr_windows.parquet, the 100 ms FFR activation log, when [frequency] has dips, and "
                    "control_hourly.parquet, Tier 3's and the scheduler's hourly decisions, when [control] "
                    "runs them). A scenario with [training] is a power study at its base tick: "
                    "timeseries.parquet and summary.json with smoothing on and off. "
                    "The folder is written under a temporary name and renamed when complete, so an "
                    "interrupted run leaves no complete-looking folder. Exit 0 on success; 1 if the "
                    "energy balance fails (no folder written); 2 on an invalid scenario, a trace or "
                    "data file that cannot cover the run, or an existing results folder without --force.",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario TOML file")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="results root; the run goes to DIR/<scenario name>/ (default: %(default)s)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing DIR/<name>/ (it is removed only after the new run completes)")
    p.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("calibrate", help="fit model coefficients to measured data",
                       description="Fit a model's coefficients to measured data and report how well "
                                   "they reproduce it.")
    cal = p.add_subparsers(dest="target", metavar="MODEL", required=True)
    p = cal.add_parser(
        "gpu", help="GPU power, throughput, cap-step dynamics and thermal RC (V100 campaign)",
        description="Fit the GPU model on the GridPilot V100 telemetry (E1 power-cap sweep, E2 cap "
                    "steps; E3 checks the thermal fit when present) and report leave-one-out error, "
                    "best-efficiency points, step response and skipped telemetry lines. Exit 0 on "
                    "success, 2 if DIR is missing or lacks the expected files.",
    )
    p.add_argument("--data", required=True, metavar="DIR",
                   help="the v100_telemetry folder (holding E1_power_cap_sweep/ and E2_inner_loop/)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--write", action="store_true",
                   help="rewrite the packaged coefficients twin/physics/data/gpu_v100_fit.json")
    p.set_defaults(func=_cmd_calibrate_gpu)

    p = sub.add_parser("ci", help="grid carbon-intensity traces",
                       description="Grid carbon-intensity traces from the ENTSO-E Transparency Platform.")
    ci = p.add_subparsers(dest="ci_command", metavar="ACTION", required=True)
    p = ci.add_parser(
        "fetch", help="fetch hourly carbon intensity from ENTSO-E into a parquet cache",
        description="Fetch actual generation per type (A75) for COUNTRY over [START, END) from the "
                    "ENTSO-E API, convert it to hourly carbon intensity and carbon-free fraction "
                    "(IPCC AR5 lifecycle factors) and write DIR/<COUNTRY>_<START>_<END>.parquet; an "
                    "existing file is reused unless --refresh. Needs an API token in ENTSOE_API_TOKEN "
                    "or ~/.config/gridtwin/entsoe_token (directory: GRIDTWIN_CONFIG_DIR). Exit 0 on "
                    "success, 2 on a bad argument or no token, 1 if the request or its data fail.",
    )
    p.add_argument("--country", required=True, metavar="CC", help="SE, CH, FR, IT, DE (queried as DE_LU) or PL")
    p.add_argument("--start", required=True, metavar="TIME", help="first hour, e.g. 2025-01-01 (UTC)")
    p.add_argument("--end", required=True, metavar="TIME", help="end, exclusive, e.g. 2025-02-01 (UTC)")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="cache folder (default: ~/.cache/gridtwin/entsoe)")
    p.add_argument("--refresh", action="store_true", help="fetch again even if the file exists")
    p.add_argument("--missing", choices=("raise", "zero"), default="raise",
                   help="a type with no value in an hour: fail (default) or count it as 0 MW")
    p.set_defaults(func=_cmd_ci_fetch)

    p = sub.add_parser(
        "reproduce", help="reproduce the paper's experiments and write the paper table",
        description="Run the paper's experiments with the twin (E2 cap-step settling, E3 AR(4) "
                    "predictor, E4 closed-loop demand following, DAY100 the 24 h 100-host day, E8 "
                    "PUE-aware vs CI-only Tier 3 on six grids over 28 days), compare each metric with the "
                    "paper or its measured data and write OUT/paper_table.md and OUT/paper_table.json. "
                    "E2-E4 and DAY100 take seconds, E8 about a minute and a half on two cores "
                    "(27 facility runs, with a progress bar). Exit 0 when every row with a tolerance "
                    "passes, 1 when one fails (or an experiment cannot run), 2 on an unknown experiment "
                    "or a missing data folder.",
    )
    p.add_argument("--only", default=None, metavar="E2,E3,E4,DAY100,E8",
                   help="comma-separated experiments to run (default: all)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="the v100_telemetry folder (default: ../shared/data/v100_telemetry, or "
                        "$GRIDTWIN_SHARED_DATA/v100_telemetry); E8 reads entsoe_ci_2025 beside it")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for paper_table.md and paper_table.json")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated experiments (default: %(default)s)")
    p.set_defaults(func=_cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
