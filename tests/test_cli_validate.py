"""``gridtwin validate`` and the command-line surface, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def gridtwin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twin", *args], cwd=REPO, capture_output=True,
                          text=True, encoding="utf-8", timeout=120)


def test_valid_files_exit_0_with_ok_lines():
    out = gridtwin("validate", "scenarios/quickstart.toml", "scenarios/m100_day.toml")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0] == ("ok: scenarios/quickstart.toml (name='quickstart', 24 h at 1 s = 86400 ticks, "
                        "120 nodes x 8 H100-SXM)")
    assert lines[1].startswith("ok: scenarios/m100_day.toml (name='m100_day', ")
    assert "86400 ticks, 980 nodes x 4 V100-SXM2-16GB" in lines[1]


def test_one_bad_file_among_good_ones_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    text = (REPO / "scenarios" / "quickstart.toml").read_text(encoding="utf-8")
    assert text.count("nodes = 120") == 1
    bad.write_text(text.replace("nodes = 120", 'nodes = "120"'), encoding="utf-8")
    out = gridtwin("validate", "scenarios/quickstart.toml", str(bad), "scenarios/m100_day.toml")
    assert out.returncode == 2
    # the good files are still checked and reported
    assert [ln.split(" ")[1] for ln in out.stdout.splitlines()] == [
        "scenarios/quickstart.toml", "scenarios/m100_day.toml"]
    assert out.stderr.splitlines() == [
        f"{bad}: facility.nodes = '120': expected an integer >= 1 and <= 1e+07"]
    assert "Traceback" not in out.stderr


def test_nonexistent_file_exits_2(tmp_path):
    missing = tmp_path / "missing.toml"
    out = gridtwin("validate", str(missing))
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith(f"{missing}: cannot read file")
    assert "Traceback" not in out.stderr


def test_no_arguments_is_a_usage_error():
    out = gridtwin()
    assert out.returncode == 2
    assert "usage: gridtwin" in out.stderr
    assert "Traceback" not in out.stderr


def test_validate_without_files_is_a_usage_error():
    out = gridtwin("validate")
    assert out.returncode == 2
    assert "FILE" in out.stderr


def test_run_help_describes_outputs_and_options():
    out = gridtwin("run", "--help")
    assert out.returncode == 0, out.stderr
    for word in ("timeseries.parquet", "summary.json", "overview.png", "--out", "--force"):
        assert word in out.stdout, word
