"""GridTwin benchmarks (issue 9): wall time, real-time factor and peak memory of whole runs.

Usage::

    python bench/run.py [--only NAME[,NAME]] [--repeat N] [--json]

Entries (``--only``; default: every entry except the long ``m100_year``):

* ``m100_day``: ``bench/scenarios/m100_day_full.toml`` (``scenarios/m100_day.toml``: 980
  nodes x 4 V100, 24 h at 1 s; plus 24 FFR dips, Tier 2 on every host, the island and
  Tier 1 in the event windows).
* ``host100_day``: ``scenarios/host100_day.toml`` (seed 004's 100-host day: Tiers 1-3,
  the island, the carbon-aware scheduler).
* ``gw_day``: ``bench/scenarios/gw_day.toml`` (~1 GW: 5 400 cohorts of 100 hosts x 4
  V100, Tier 2 per cohort); stopped at
  ``GW_LIMIT_S`` wall or ``GW_LIMIT_RSS_MB`` resident memory (the result then says so).
* ``m100_year``: ``bench/scenarios/m100_year.toml`` (long: ``make bench-long``).
* ``scaling``: ``bench/scenarios/scaling_base.toml`` at 1 000 -> 10 000 nodes (1 day) and
  1 -> 7 days (1 000 nodes); exponents of wall ~ size**k fitted with ``numpy.polyfit``
  on log-log.

Every run goes through the CLI's code path (:func:`twin.sim.results.run_to_folder`) in a
fresh Python subprocess, writing into a temporary folder that is removed afterwards. The
reported numbers are medians over ``--repeat`` runs:

* ``wall_s``: the run's own ``summary.json`` ``wall_s`` (build facility and workload,
  simulate, write parquet; not the interpreter start, not the PNG);
* ``sim_s``: simulated seconds; ``real_time_factor = sim_s / wall_s``;
* ``host_steps_per_s = nodes * ticks / wall_s``;
* ``peak_rss_mb``: the child's peak resident set size from ``os.wait4`` (the
  ``rusage`` of that one child, ``ru_maxrss`` in KiB on Linux), so each run is measured
  on its own (``RUSAGE_CHILDREN`` would give the maximum over all children so far);
* ``events``: SimPy events the run scheduled (the environment's event counter);
* ``window_count``: FFR activation-log windows (100 ms sub-ticks) in the run.

Progress goes to stderr; with ``--json`` stdout carries only the JSON list.
The benchmark measures the source tree it sits in (``bench/..``), whatever is installed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "bench" / "scenarios"
DEFAULT = ("m100_day", "host100_day", "gw_day", "scaling")
LONG = ("m100_year",)
SCENARIO_FILES = {
    "m100_day": SCENARIOS / "m100_day_full.toml",
    "host100_day": ROOT / "scenarios" / "host100_day.toml",
    "gw_day": SCENARIOS / "gw_day.toml",
    "m100_year": SCENARIOS / "m100_year.toml",
}
#: gw_day is stopped past twice its target wall (60 s) or past its memory target (4 GB).
GW_LIMIT_S = 120.0
GW_LIMIT_RSS_MB = 4096.0
#: Any other run is stopped after this long [s] (m100_year's target is 30 min).
RUN_LIMIT_S = 3600.0
SCALING_NODES = (1000, 3000, 10000)
SCALING_DAYS = (1, 3, 7)
FIELDS = ("name", "wall_s", "sim_s", "real_time_factor", "host_steps_per_s", "peak_rss_mb", "events",
          "window_count", "kernels")


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- child side


def _child(scenario_path: str, overrides: str) -> None:
    """Run one scenario through run_to_folder in this process; print one JSON line."""
    sys.path.insert(0, str(ROOT))  # measure this tree, not whatever is installed
    import tomllib

    from twin.scenario import load_scenario, parse_scenario
    from twin.sim import results

    over = json.loads(overrides)
    if over:
        raw = tomllib.loads(Path(scenario_path).read_text())
        for dotted, value in over.items():
            *tables, key = dotted.split(".")
            node = raw
            for t in tables:
                node = node.setdefault(t, {})
            node[key] = value
        sc = parse_scenario(raw, path=scenario_path)
    else:
        sc = load_scenario(scenario_path)

    engines = []

    class _Engine(results.Engine):  # keeps a handle on the engine for its event counter
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            engines.append(self)

    results.Engine = _Engine
    with tempfile.TemporaryDirectory(prefix="gridtwin-bench-") as tmp:
        folder = results.run_to_folder(sc, Path(tmp), force=True)
        summary = json.loads((folder / "summary.json").read_text())
    eng = engines[0]
    eid = getattr(eng.env, "_eid", None)  # simpy.Environment's itertools.count of scheduled events
    events = next(eid) if eid is not None else None
    from twin import aot

    print(json.dumps({"wall_s": summary["wall_s"], "sim_s": sc.duration_s, "ticks": sc.n_ticks,
                      "nodes": sc.facility.nodes, "events": events,
                      "window_count": len(eng.log_windows), "kernels": aot.status()}))


# ---------------------------------------------------------------------------- parent side


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def run_once(scenario: Path, overrides: dict | None = None, limit_s: float = RUN_LIMIT_S,
             limit_rss_mb: float = math.inf) -> dict:
    """One run in a fresh subprocess; its numbers plus ``peak_rss_mb`` and ``status``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(scenario), json.dumps(overrides or {})]
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, cwd=ROOT)
        status, killed = None, None
        while status is None:
            pid, status_word, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = os.waitstatus_to_exitcode(status_word)
                proc.returncode = status
                break
            elapsed = time.perf_counter() - t0
            rss = _rss_mb(proc.pid)
            if elapsed > limit_s or rss > limit_rss_mb:
                killed = (f"stopped after {elapsed:.0f} s wall (limit {limit_s:g} s)" if elapsed > limit_s else
                          f"stopped at {rss:.0f} MB resident after {elapsed:.0f} s (limit {limit_rss_mb:g} MB)")
                proc.kill()
            time.sleep(0.05)
        process_wall_s = time.perf_counter() - t0
        peak_rss_mb = ru.ru_maxrss / 1024.0  # KiB on Linux
        out.seek(0)
        text = out.read().strip().splitlines()
    if killed or status != 0 or not text:
        return {"status": killed or f"failed (exit {status})", "peak_rss_mb": peak_rss_mb,
                "process_wall_s": process_wall_s}
    r = json.loads(text[-1])
    r.update(status="ok", peak_rss_mb=peak_rss_mb, process_wall_s=process_wall_s)
    return r


def summarise(name: str, runs: list[dict]) -> dict:
    """Median over the runs that completed; the first failure's status otherwise."""
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        return {"name": name, "wall_s": None, "sim_s": None, "real_time_factor": None, "host_steps_per_s": None,
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "events": None, "window_count": None,
                "status": runs[0]["status"], "repeats": len(runs)}
    wall = statistics.median(r["wall_s"] for r in ok)
    r0 = ok[0]
    return {
        "name": name,
        "wall_s": wall,
        "sim_s": r0["sim_s"],
        "real_time_factor": r0["sim_s"] / wall,
        "host_steps_per_s": r0["nodes"] * r0["ticks"] / wall,
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in ok),
        "events": r0["events"],
        "window_count": r0["window_count"],
        "kernels": r0.get("kernels"),
        "status": "ok" if len(ok) == len(runs) else f"{len(runs) - len(ok)} of {len(runs)} runs failed",
        "repeats": len(ok),
        "wall_s_runs": [r["wall_s"] for r in ok],
    }


def bench_scenario(name: str, repeat: int) -> dict:
    path = SCENARIO_FILES[name]
    limits = {"limit_s": GW_LIMIT_S, "limit_rss_mb": GW_LIMIT_RSS_MB} if name == "gw_day" else {}
    runs = []
    for i in range(repeat):
        r = run_once(path, **limits)
        log(f"{name} run {i + 1}/{repeat}: {r['status']}, wall {r.get('wall_s', float('nan')):.2f} s, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB")
        runs.append(r)
        if r["status"] != "ok" and name == "gw_day":
            break  # one over-limit run says it; repeating costs minutes
    return summarise(name, runs)


def bench_scaling(repeat: int) -> dict:
    """Wall vs nodes (1 day) and vs days (1 000 nodes); log-log slopes by numpy.polyfit."""
    import numpy as np

    base = SCENARIOS / "scaling_base.toml"
    points = {"nodes": [], "days": []}
    for axis, values in (("nodes", SCALING_NODES), ("days", SCALING_DAYS)):
        for v in values:
            over = {"facility.nodes": v} if axis == "nodes" else {"duration_h": 24.0 * v}
            res = summarise(f"scaling_{axis}_{v}", [run_once(base, over) for _ in range(repeat)])
            log(f"scaling {axis}={v}: {res['status']}, wall {res['wall_s']} s, peak RSS {res['peak_rss_mb']:.0f} MB")
            points[axis].append((v, res))
    out = {"name": "scaling", "status": "ok", "repeats": repeat}
    for axis in ("nodes", "days"):
        good = [(v, r) for v, r in points[axis] if r["wall_s"]]
        xs = np.log([v for v, _ in good])
        ys = np.log([r["wall_s"] for _, r in good])
        out[f"exponent_{axis}"] = float(np.polyfit(xs, ys, 1)[0]) if len(good) >= 2 else None
        out[f"points_{axis}"] = [{axis: v, "wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"],
                                  "real_time_factor": r["real_time_factor"],
                                  "host_steps_per_s": r["host_steps_per_s"], "events": r["events"]}
                                 for v, r in points[axis]]
    last = points["nodes"][-1][1]
    for k in FIELDS[1:]:
        out.setdefault(k, last.get(k))  # the largest point fills the common fields
    out["exponents_target"] = [0.8, 1.1]
    return out


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--child":
        _child(argv[1], argv[2])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated entries: " + ", ".join(DEFAULT + LONG))
    ap.add_argument("--repeat", type=int, default=3, help="runs per entry; the median is reported (default 3)")
    ap.add_argument("--json", action="store_true", help="print only the JSON list on stdout")
    args = ap.parse_args(argv)
    names = tuple(n.strip() for n in args.only.split(",")) if args.only else DEFAULT
    unknown = [n for n in names if n not in DEFAULT + LONG]
    if unknown or args.repeat < 1:
        ap.error(f"unknown entry {unknown[0]!r}" if unknown else "--repeat must be >= 1")
    results = []
    for name in names:
        log(f"{name}: {args.repeat} run(s)")
        results.append(bench_scaling(args.repeat) if name == "scaling" else bench_scenario(name, args.repeat))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['name']:<12} wall {r['wall_s'] if r['wall_s'] is None else round(r['wall_s'], 3)} s  "
                  f"x{r['real_time_factor'] and round(r['real_time_factor'])} real time  "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB  {r['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
