"""A run's results folder, written atomically: OUT/<name>/ appears only when complete.

Everything is written under ``OUT/.<name>.partial-<pid>/`` and renamed at the end. An
exception or SIGTERM removes the partial folder; a SIGKILL leaves it hidden and
named ``.partial``, never looking like a result.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sys
import time
from pathlib import Path

from twin import __version__
from twin.figures.overview import plot_overview
from twin.scenario import Scenario
from twin.sim.engine import Engine
from twin.sim.metrics import summarise


class ResultsExistError(FileExistsError):
    """The results folder exists and the user did not ask to replace it."""


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far [MB] (ru_maxrss is KiB on Linux)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def _raise_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def run_to_folder(scenario: Scenario, out_root: Path, *, force: bool = False, progress: bool = False) -> Path:
    """Run ``scenario`` and write ``out_root/<name>/``; return that path."""
    out_root = Path(out_root)
    final = out_root / scenario.name
    if final.exists() and not force:
        raise ResultsExistError(f"{final} already exists; pass --force to replace it or --out to write elsewhere")
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = out_root / f".{scenario.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm) if _is_main_thread() else None
    try:
        wall0 = time.perf_counter()
        if scenario.training is not None:  # a power study (issue 8): its own runner, same atomic folder
            from twin.sim.power_study import run_power_study, write_summary

            # raises PowerStudyBalanceError (an EnergyBalanceError): no results for a leaking run
            write_summary(tmp / "summary.json", run_power_study(scenario, tmp, version=__version__))
        else:
            engine = Engine(scenario, tmp, progress=progress)
            engine.run()
            wall_s = time.perf_counter() - wall0
            engine.site.ledger.check()  # raises EnergyBalanceError: no results for a leaking run
            summary = summarise(engine, wall_s=wall_s, peak_rss_mb=peak_rss_mb(), version=__version__)
            if scenario.outputs.overview_png:
                t_s, coarse = engine.recorder.coarse()
                plot_overview(tmp / "overview.png", scenario.start, t_s, coarse,
                              f"{scenario.name}: {scenario.facility.nodes} nodes x "
                              f"{scenario.facility.gpus_per_node} {scenario.facility.gpu_model}, grid "
                              f"{scenario.grid.country}")
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if final.exists():
            old = out_root / f".{scenario.name}.old-{os.getpid()}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return final


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
