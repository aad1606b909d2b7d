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
    _print_summary(folder)
    return EXIT_OK


def _print_summary(folder: Path) -> None:
    import json

    s = json.loads((folder / "summary.json").read_text())
    print(f"results: {folder}  ({', '.join(s['outputs'])})")
    print(f"  IT energy {s['it_energy_kwh']:,.0f} kWh, facility {s['facility_energy_kwh']:,.0f} kWh, "
          f"PUE {s['pue_mean']:.3f} (tick max {s['pue_max']:.3f}), peak {s['peak_facility_power_kw']:,.0f} kW, "
          f"CO2 {s['co2_kg']:,.0f} kg")
    print(f"  simulated {s['duration_h']:g} h at {s['base_tick_s']:g} s in {s['wall_s']:.2f} s "
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
                    "(plus hosts.parquet if the scenario asks for per-host series). The folder is "
                    "written under a temporary name and renamed when complete, so an interrupted "
                    "run leaves no complete-looking folder. Exit 0 on success, 2 on an invalid "
                    "scenario or an existing results folder without --force.",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario TOML file")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="results root; the run goes to DIR/<scenario name>/ (default: %(default)s)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing DIR/<name>/ (it is removed only after the new run completes)")
    p.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    p.set_defaults(func=_cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
