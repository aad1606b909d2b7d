"""`gridtwin run` as a user runs it: exit codes, messages, and interrupted runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def gridtwin(*args, cwd=REPO, **kw):
    return subprocess.run([sys.executable, "-m", "twin", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, **kw)


def write_scenario(tmp_path: Path, name="cli", duration_h=0.5, nodes=4) -> Path:
    text = (REPO / "scenarios" / "quickstart.toml").read_text()
    text = text.replace('name = "quickstart"', f'name = "{name}"')
    text = text.replace("duration_h = 24.0", f"duration_h = {duration_h}")
    text = text.replace("nodes = 120", f"nodes = {nodes}")
    text = text.replace('source = "synthetic"\nffr_dips = 6', 'source = "none"')  # no FFR dips in short runs
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_run_writes_three_files_and_says_where(tmp_path):
    sc = write_scenario(tmp_path)
    r = gridtwin("run", str(sc), "--out", str(tmp_path / "res"), "--no-progress")
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "res" / "cli"
    assert f"results: {folder}" in r.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["overview.png", "summary.json", "timeseries.parquet"]
    s = json.loads((folder / "summary.json").read_text())
    assert s["ticks"] == 1800 and s["scenario_sha256"] and s["real_time_factor"] > 1


def test_run_invalid_scenario_exits_2_without_traceback(tmp_path):
    sc = write_scenario(tmp_path)
    sc.write_text(sc.read_text().replace("gpus_per_node = 8", "gpus_per_node = 'eight'"))
    r = gridtwin("run", str(sc), "--out", str(tmp_path / "res"))
    assert r.returncode == 2
    assert "facility.gpus_per_node = 'eight': expected an integer >= 1 and <= 64" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "res").exists()


def test_run_refuses_to_overwrite_without_force(tmp_path):
    sc = write_scenario(tmp_path, duration_h=0.1)
    out = tmp_path / "res"
    assert gridtwin("run", str(sc), "--out", str(out), "--no-progress").returncode == 0
    before = (out / "cli" / "summary.json").read_text()
    r = gridtwin("run", str(sc), "--out", str(out), "--no-progress")
    assert r.returncode == 2
    assert "already exists; pass --force" in r.stderr
    assert (out / "cli" / "summary.json").read_text() == before
    assert gridtwin("run", str(sc), "--out", str(out), "--no-progress", "--force").returncode == 0


def test_unknown_option_is_usage_error():
    r = gridtwin("run", "--bogus")
    assert r.returncode == 2
    assert "unrecognized arguments" in r.stderr or "required" in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_interrupted_run_leaves_no_complete_looking_folder(tmp_path, sig):
    # 980 nodes for 48 h takes several seconds; we interrupt it once it is writing.
    sc = write_scenario(tmp_path, name="long", duration_h=48.0, nodes=980)
    out = tmp_path / "res"
    # a terminal's Ctrl-C: undo an inherited SIG_IGN (background jobs of a non-interactive
    # shell start with SIGINT ignored, and Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen([sys.executable, "-m", "twin", "run", str(sc), "--out", str(out), "--no-progress"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not list(out.glob(".long.partial-*/timeseries.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "the run finished before it could be interrupted; make it longer"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert not (out / "long").exists()
    leftovers = [p.name for p in out.iterdir()]
    if sig == signal.SIGKILL:  # nothing can clean up after SIGKILL: the partial folder stays hidden
        assert all(n.startswith(".long.partial-") for n in leftovers), leftovers
    else:  # SIGTERM and Ctrl-C clean up
        assert leftovers == []
        assert "Traceback" not in err


def test_m100_day_scenario_runs_end_to_end(tmp_path):
    """The shipped Marconi100 day completes through the CLI; sanity of its summary:
    mean busy-node fraction near the offered load 0.40 (+-0.1: FCFS queueing and one
    day of a random stream), and PUE within Eq. 4's bounds for these coefficients
    (1.08 at full free cooling and full load, < 1.26 + misc/load share at part load)."""
    r = gridtwin("run", "scenarios/m100_day.toml", "--out", str(tmp_path), "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "m100_day" / "summary.json").read_text())
    assert s["ticks"] == 86_400 and s["nodes"] == 980 and s["gpus"] == 3920
    assert 0.30 <= s["mean_busy_node_fraction"] <= 0.50
    assert 1.08 <= s["pue_mean"] <= s["pue_max"] < 1.6
    assert s["peak_facility_power_kw"] <= s["design_it_power_kw"] * 1.6
