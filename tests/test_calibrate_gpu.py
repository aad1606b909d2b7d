"""Calibration of the GPU model (twin/calibrate/gpu.py), the V100 telemetry reader
(traces/v100_telemetry.py) and ``gridtwin calibrate gpu``.

Data-free tests use files written into ``tmp_path``: a hand-written corrupted CSV for
the reader, and a synthetic campaign generated from known coefficients (E1 cells and
traces, an E2 step with a 20 ms sample-and-hold) that the whole fit must recover.
Tests marked ``needs_data`` run the fit on the real V100 data and skip without it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traces.synthetic import shared_data_dir

from traces.v100_telemetry import (
    SKIP_REASONS,
    read_e1_parsed_results,
    read_e2_step_plan,
    read_v100_telemetry,
)
from twin.calibrate import CalibrationDataError
from twin.calibrate.gpu import (
    E1_WORKLOADS,
    calibrate_gpu,
    cap_bound_mask,
    locate_data,
    refresh_events,
    simulate_junction_temp_c,
    write_fit,
)
from twin.cli import main
from twin.physics.gpu import (
    GpuFit,
    board_power_step,
    effective_sm_clock_mhz,
    junction_temp_step,
    load_gpu_fit,
    mean_board_power_w,
    throughput_iter_per_s,
)

V100_DIR = shared_data_dir() / "v100_telemetry"
needs_data = pytest.mark.skipif(not (V100_DIR / "E1_power_cap_sweep" / "parsed_results.csv").is_file(),
                                reason=f"real V100 data not found under {V100_DIR}")
HEADER = ("t_s,gpu_index,power_w,sm_clock_mhz,mem_clock_mhz,temperature_c,util_gpu,util_mem,"
          "mem_used_mib,fan_pct,throttle_reasons,cpu_util,rapl_pkg_uj")


def _row(t, gpu=0, power=200.0, sm=1380, temp=50, util=1.0):
    return f"{t:.4f},{gpu},{power:.2f},{sm},877,{temp},{util},0.2,2424,,0x0000000000000000,,"


# ---------------------------------------------------------------- reader


def test_reader_counts_every_skipped_line_by_reason(tmp_path):
    lines = [
        HEADER,
        _row(0.00), _row(0.01),
        "0.7633,2,38.16,135,877,32,0.0,0.0,273,,0x0000000000000001,,1.0220,0,80.86,1530,877",  # 30 fields: interleaved
        ",0.0,276,",                                                       # 4 fields: fragment
        _row(0.02, gpu=2, power=38.2),                                     # other GPU
        _row(0.02, gpu=1, power=40.5),                                     # other GPU
        _row(0.03).replace("200.00", "2x0.0"),                             # unparsable power
        _row(0.04).replace(",0x0000000000000000,", ",0xZZ,"),              # unparsable hex mask
        _row(0.05).replace("200.00", ""),                                  # required field empty
        "",                                                                # blank
        _row(5299.0),                                                      # time fragment, out of order
        _row(0.06), _row(0.07), _row(0.07), _row(0.08),                    # a repeated time stamp
    ]
    path = tmp_path / "telemetry.csv"
    path.write_text("\n".join(lines) + "\n")
    data, report = read_v100_telemetry(path, gpu_index=0)
    assert report.skipped == {"blank": 1, "field_count": 2, "unparsable": 2, "missing_required": 1,
                              "other_gpu": 2, "time_out_of_order": 2}
    assert tuple(report.skipped) == SKIP_REASONS
    assert dict(report.other_gpus) == {1: 1, 2: 1}
    assert report.lines_total == len(lines) - 1 == 15
    assert report.rows_kept == 5 == report.lines_total - report.skipped_total
    np.testing.assert_allclose(data["t_s"], [0.0, 0.01, 0.06, 0.07, 0.08])
    assert np.all(np.diff(data["t_s"]) > 0)
    assert data["gpu_index"].dtype == np.int64 and set(data["gpu_index"]) == {0}
    assert np.isnan(data["fan_pct"]).all() and (data["throttle_reasons"] == 0).all()
    assert report.to_dict()["skipped"]["field_count"] == 2


def test_reader_keeps_the_longest_increasing_run(tmp_path):
    # a fragment early on must not throw away everything after it
    times = [0.0, 0.01, 999.0, 0.02, 0.03, 0.04, 0.03, 0.05]
    path = tmp_path / "t.csv"
    path.write_text("\n".join([HEADER] + [_row(t) for t in times]) + "\n")
    data, report = read_v100_telemetry(path, 0)
    np.testing.assert_allclose(data["t_s"], [0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    assert report.skipped["time_out_of_order"] == 2


def test_reader_maps_e6_header_and_rejects_foreign_files(tmp_path):
    e6 = tmp_path / "budget.csv"
    e6.write_text("t,gpu_index,power_w,sm_clock_mhz,util_gpu,pcap_set,rapl_pkg_uj\n"
                  "0.0000,0,84.21,1530,0.0,,197646145696\n0.0000,1,77.31,1530,0.0,,197646145696\n"
                  "0.0100,0,90.00,1530,0.1,250,\n")
    data, report = read_v100_telemetry(e6, 0)
    assert list(data["t_s"]) == [0.0, 0.01] and report.skipped["other_gpu"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("time,watts\n1,2\n")
    with pytest.raises(ValueError, match="lacks"):
        read_v100_telemetry(bad, 0)


def test_e1_and_e2_readers_validate(tmp_path):
    p = tmp_path / "parsed_results.csv"
    p.write_text("run,workload,pcap_w\nx,y,150\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_e1_parsed_results(p)
    s = tmp_path / "step_plan.json"
    s.write_text(json.dumps({"plan": []}))
    with pytest.raises(ValueError, match="expected a step plan"):
        read_e2_step_plan(s)


# ---------------------------------------------------------------- pieces of the fit


def test_refresh_events_undo_sample_and_hold():
    # true readings change every 20 ms at t = 0.007 + 0.02 k; sampled every 5 ms and held
    t = np.arange(0.0, 0.2, 0.005)
    k = np.floor((t - 0.007) / 0.02)
    p = np.where(k < 0, 100.0, 100.0 + 10.0 * (k + 1))
    tr, pr = refresh_events(t, p)
    # each event lies between the two samples around 0.007 + 0.02 k: midpoint within 2.5 ms
    np.testing.assert_allclose(tr, 0.007 + 0.02 * np.arange(tr.size), atol=0.0025 + 1e-12)
    np.testing.assert_allclose(pr, 110.0 + 10.0 * np.arange(tr.size))


def test_vectorised_thermal_simulation_equals_repeated_steps():
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.005, 0.02, 3000))  # ~37 s of uneven samples
    p = rng.uniform(60.0, 250.0, t.size)
    ref = np.empty_like(t)
    ref[0] = 45.0
    for i in range(t.size - 1):
        ref[i + 1] = junction_temp_step(ref[i], p[i], 30.0, t[i + 1] - t[i], 0.15, 20.0)
    np.testing.assert_allclose(simulate_junction_temp_c(t, p, 45.0, 0.15, 20.0, 30.0), ref, rtol=1e-10)
    # a short tau forces the overflow guard to split the series: same answer
    for i in range(t.size - 1):
        ref[i + 1] = junction_temp_step(ref[i], p[i], 30.0, t[i + 1] - t[i], 0.15, 0.05)
    np.testing.assert_allclose(simulate_junction_temp_c(t, p, 45.0, 0.15, 0.05, 30.0), ref, rtol=1e-9)


# ---------------------------------------------------------------- a synthetic campaign

TRUE_THERMAL = {"r_th_k_per_w": 0.2, "tau_s": 5.0, "ambient_c": 30.0}
TRUE_TAU = {"down": 0.02, "up": 0.25}
STEP_OFFSET_S = -0.03  # telemetry clock = step-log clock + offset


def _write_synthetic_campaign(root: Path, fit: GpuFit) -> None:
    """E1 (36 cells + traces) and E2 generated from ``fit`` and the TRUE_* values (seeded)."""
    rng = np.random.default_rng(42)
    e1, e2 = root / "E1_power_cap_sweep", root / "E2_inner_loop"
    e1.mkdir(parents=True)
    e2.mkdir()
    rows = []
    t = np.arange(0.0, 8.0, 0.01)
    for e1_name, w in E1_WORKLOADS.items():
        for cap in (150, 200, 250, 300):
            for f in (405, 945, 1380):
                p = float(mean_board_power_w(cap, f, w, fit)) * (1.0 + rng.normal(0.0, 0.003))
                x = float(throughput_iter_per_s(cap, f, w, fit)) * (1.0 + rng.normal(0.0, 0.003))
                run = f"{e1_name}_pcap{cap}_sm{f}"
                rows.append({"run": run, "workload": e1_name, "pcap_w": cap, "sm_target_mhz": f, "iters_per_s": x,
                             "power_mean_w": p, "sm_mean_mhz": float(effective_sm_clock_mhz(cap, f, w, fit)),
                             "temp_mean_c": 50.0, "temp_max_c": 55.0, "duration_s": 8.0, "wl_elapsed_s": 7.0,
                             "energy_j": 8.0 * p, "throttle_seen": "0x0000000000000001"})
                power = np.where(t < 1.0, 60.0, p)
                temp = simulate_junction_temp_c(t, power, 40.0, TRUE_THERMAL["r_th_k_per_w"], TRUE_THERMAL["tau_s"],
                                                TRUE_THERMAL["ambient_c"])
                lines = [HEADER] + [_row(ti, power=pi, sm=f, temp=ki) for ti, pi, ki in zip(t, power, temp)]
                if run == "bursty_alternating_pcap150_sm405":  # quirks for the skipped-line report
                    lines += ["1.0,2,38.16", _row(9.0, gpu=2, power=38.0)]
                (e1 / f"{run}.csv").write_text("\n".join(lines) + "\n")
    pd.DataFrame(rows).to_csv(e1 / "parsed_results.csv", index=False)

    # E3 (thermal check only): GPU 0 at 250 W with GPU 1 rows and two torn lines mixed in
    e3 = root / "E3_outer_loop"
    e3.mkdir()
    t3 = np.arange(0.0, 5.0, 0.01)
    temp3 = simulate_junction_temp_c(t3, np.full(t3.size, 250.0), 45.0, TRUE_THERMAL["r_th_k_per_w"],
                                     TRUE_THERMAL["tau_s"], TRUE_THERMAL["ambient_c"])
    lines = [HEADER]
    for i, (ti, ki) in enumerate(zip(t3, temp3)):
        lines.append(_row(ti, power=250.0, temp=ki))
        if i % 100 == 0:
            lines.append(_row(ti, gpu=1, power=40.5, sm=135, temp=30))
    lines[50] = lines[50][:30] + lines[51]  # two writers interleaved: one torn line replaces two rows
    del lines[51]
    (e3 / "matmul_compute_bound_telemetry.csv").write_text("\n".join(lines) + "\n")

    # E2: caps 280 -> 200 (step log t = 4 s) -> 280 (t = 9 s); compute phase at
    # min(276, 0.98 cap), idle phases (70 W) at telemetry [6.0, 6.5) and [11.0, 11.5).
    plan = [(0.0, 280), (4.0, 200), (9.0, 280)]
    (e2 / "step_plan.json").write_text(json.dumps({"applied": [
        {"t_planned": tp, "t_actual": tp + 1e-4, "pcap_w": c, "label": lab, "rc": 0}
        for (tp, c), lab in zip(plan, ["initial high", "step-down", "step-up"])]}))
    dyn = type("Dyn", (), {"tau_down_s": TRUE_TAU["down"], "tau_up_s": TRUE_TAU["up"]})
    tf = np.arange(0.0, 13.0, 0.001)
    cap_now = np.where(tf < 4.0001 + STEP_OFFSET_S, 280.0, np.where(tf < 9.0001 + STEP_OFFSET_S, 200.0, 280.0))
    idle = ((tf >= 6.0) & (tf < 6.5)) | ((tf >= 11.0) & (tf < 11.5))
    target = np.where(idle, 70.0, np.minimum(276.0, 0.98 * cap_now))
    true_p = np.empty_like(tf)
    true_p[0] = 276.0
    for i in range(tf.size - 1):
        true_p[i + 1], _ = board_power_step(true_p[i], target[i], 0.001, dyn)
    ts = np.arange(0.0, 13.0, 0.005)
    refresh = np.floor((ts - 0.007) / 0.02) * 0.02 + 0.007  # last NVML refresh before each sample
    # each refresh reads the true power plus 1 W (sd) of noise, as NVML readings fluctuate
    noise = rng.normal(0.0, 1.0, int(13.0 / 0.02) + 2)
    held = np.interp(np.maximum(refresh, 0.0), tf, true_p) + noise[np.round((refresh - 0.007) / 0.02).astype(int) + 1]
    sm = np.where(np.interp(ts, tf, cap_now) < 250.0, 1312, 1530)
    (e2 / "telemetry.csv").write_text("\n".join(
        [HEADER] + [_row(ti, power=pi, sm=si, temp=60) for ti, pi, si in zip(ts, held, sm)]) + "\n")


@pytest.fixture(scope="module")
def synthetic_campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("v100_synthetic")
    _write_synthetic_campaign(root, load_gpu_fit())
    return root


@pytest.fixture(scope="module")
def synthetic_result(synthetic_campaign):
    return calibrate_gpu(synthetic_campaign)


def test_fit_recovers_the_synthetic_power_model(synthetic_result):
    fit, report = synthetic_result
    truth = load_gpu_fit()
    # 0.3 % noise on the cells: leave-one-out error below 1 %, predictions within 1 % on a grid
    assert report["loo_mae_pct"] < 1.0
    caps, clocks = np.meshgrid(np.linspace(150, 300, 16), np.linspace(405, 1380, 40), indexing="ij")
    for w in truth.workloads:
        np.testing.assert_allclose(mean_board_power_w(caps, clocks, w, fit),
                                   mean_board_power_w(caps, clocks, w, truth), rtol=0.01)
        np.testing.assert_allclose(throughput_iter_per_s(caps, clocks, w, fit),
                                   throughput_iter_per_s(caps, clocks, w, truth), rtol=0.02)


def test_fit_recovers_synthetic_dynamics_and_alignment(synthetic_result):
    _, report = synthetic_result
    dyn = report["step_response"]
    # the clock drops at the command: offset recovered within half a 5 ms sample
    assert dyn["clock_alignment"]["offset_s"] == pytest.approx(STEP_OFFSET_S, abs=0.003)
    assert dyn["nvml_refresh_period_s"] == pytest.approx(0.02, abs=1e-3)
    # equal-area taus from 20 ms refresh readings: within 15 % down (tau = one refresh
    # period). Up: the 1.5 s window's tail (0.9-1.5 s = 3.6-6 tau) still holds ~0.8 W of
    # the lag, which lowers the level taken as final and tau by ~6 %: within 8 %.
    assert dyn["tau_down_s"] == pytest.approx(TRUE_TAU["down"], rel=0.15)
    assert dyn["tau_up_s"] == pytest.approx(TRUE_TAU["up"], rel=0.08)
    assert [s["label"] for s in dyn["steps"]] == ["step-down", "step-up"]


def test_fit_recovers_synthetic_thermal_rc(synthetic_result):
    fit, report = synthetic_result
    assert fit.r_th_k_per_w == pytest.approx(TRUE_THERMAL["r_th_k_per_w"], rel=0.01)
    assert fit.tau_th_s == pytest.approx(TRUE_THERMAL["tau_s"], rel=0.02)
    assert fit.ambient_c == pytest.approx(TRUE_THERMAL["ambient_c"], abs=0.1)
    assert report["thermal"]["fit_rms_k_E1"]["mean_over_traces"] < 0.05


def test_report_counts_skipped_lines_of_the_synthetic_files(synthetic_result):
    _, report = synthetic_result
    sk = report["skipped_lines"]
    assert sk["files_read"] == 38  # E2 + 36 E1 traces + one E3 file
    assert sk["total"]["field_count"] == 2 and sk["total"]["other_gpu"] == 1 + 5
    assert sk["by_file"] == {
        "E1_power_cap_sweep/bursty_alternating_pcap150_sm405.csv": {"field_count": 1, "other_gpu": 1},
        "E3_outer_loop/matmul_compute_bound_telemetry.csv": {"field_count": 1, "other_gpu": 5}}
    # the E3 trace follows the true RC exactly: its check is near zero error
    assert report["thermal"]["check_rms_k"]["E3 matmul_compute_bound"]["mean_over_traces"] < 0.05


def test_write_fit_round_trips(synthetic_result, tmp_path):
    fit, report = synthetic_result
    path = write_fit(fit, report, tmp_path / "fit.json")
    doc = json.loads(path.read_text())
    back = GpuFit.from_dict(doc)
    assert doc["command"].startswith("gridtwin calibrate gpu") and doc["diagnostics"]["loo_mae_pct"] == report[
        "loo_mae_pct"]
    assert back.tau_up_s == fit.tau_up_s and back.cap_range_w == (150.0, 300.0)
    for w, c in fit.workloads.items():
        for k, v in dataclasses.asdict(c).items():
            assert getattr(back.workloads[w], k) == pytest.approx(v, rel=1e-5)  # 6 significant digits


def test_cli_json_on_synthetic_campaign(synthetic_campaign, capsys):
    assert main(["calibrate", "gpu", "--data", str(synthetic_campaign), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("loo_mae_pct", "loo_mae_pct_by_workload", "loo_mae_pct_cap_bound", "best_efficiency",
                "step_response", "skipped_lines"):
        assert key in report
    assert report["written"] is None


def test_cli_text_summary(synthetic_campaign, capsys):
    assert main(["calibrate", "gpu", "--data", str(synthetic_campaign)]) == 0
    out = capsys.readouterr().out
    assert "leave-one-out MAE" in out and "tau_down" in out and "skipped: field_count 2, other_gpu 6" in out


def test_cli_bad_data_dir_exits_2(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["calibrate", "gpu", "--data", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "E1_power_cap_sweep" in err
    (tmp_path / "E1_power_cap_sweep").mkdir()
    assert main(["calibrate", "gpu", "--data", str(tmp_path), "--json"]) == 2
    err = capsys.readouterr().err
    assert "parsed_results.csv" in err and "step_plan.json" in err
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", "gpu"])  # --data is required: argparse exits 2
    assert exc.value.code == 2


def test_locate_data_rejects_a_file(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("")
    with pytest.raises(CalibrationDataError, match="not a directory"):
        locate_data(f)


# ---------------------------------------------------------------- the real V100 data


@pytest.fixture(scope="module")
def real_result():
    if not (V100_DIR / "E1_power_cap_sweep" / "parsed_results.csv").is_file():
        pytest.skip(f"real V100 data not found under {V100_DIR}")
    return calibrate_gpu(V100_DIR)


@needs_data
def test_real_leave_one_out_error_meets_the_target(real_result):
    _, report = real_result
    # issue #3: must <= 2.5 %, aim <= 1.5 % (the paper reports 3.45 %)
    assert report["loo_mae_pct"] <= 2.5
    assert set(report["loo_mae_pct_by_workload"]) == {"compute_bound", "memory_bound", "bursty"}
    assert max(report["loo_mae_pct_by_workload"].values()) <= 2.5
    assert report["loo_mae_pct_cap_bound"] <= 2.5 and report["cap_bound_cells"] >= 5


@needs_data
def test_real_cap_bound_cells_are_the_1380_mhz_low_cap_ones(real_result):
    from twin.calibrate.gpu import load_e1_cells

    cells = load_e1_cells(locate_data(V100_DIR))
    bound = cells[cap_bound_mask(cells)]
    assert set(bound["pcap_w"]) <= {150.0, 200.0}
    assert (bound["sm_target_mhz"] == 1380.0).sum() >= 5


@needs_data
def test_real_best_efficiency_near_the_data(real_result):
    # data best cells: 150 W / 945 MHz for all three (0.5492 / 2.8796 / 0.5695).
    # Tolerance: same cap, clock within 150 MHz of 945 (the sweep's grid step is 435-540
    # MHz), value within 6 % (bursty's best cell sits in the low 945 MHz power mode).
    _, report = real_result
    expected = {"bursty": 0.5492, "memory_bound": 2.8796, "compute_bound": 0.5695}
    for w, v in expected.items():
        b = report["best_efficiency"][w]
        assert b["data_best_cell"] == {"cap_w": 150.0, "sm_clock_mhz": 945.0, "iterations_per_joule": v}
        assert b["model"]["cap_w"] == 150.0
        assert abs(b["model"]["sm_clock_mhz"] - 945.0) <= 150.0
        assert b["model"]["iterations_per_joule"] == pytest.approx(v, rel=0.06)


@needs_data
def test_real_step_response(real_result):
    _, report = real_result
    dyn = report["step_response"]
    down, up = dyn["steps"]
    assert dyn["tau_down_s"] < 0.05 and 0.1 < dyn["tau_up_s"] < 1.0
    assert down["t95_first_crossing_measured_s"] < 0.1          # tens of ms
    assert 0.2 < up["t95_first_crossing_measured_s"] < 1.0      # hundreds of ms
    assert up["first_sm_clock_response_s"] > 0.05               # the clock ramp starts late
    assert abs(dyn["clock_alignment"]["offset_s"]) < 0.5


@needs_data
def test_real_data_quirks_are_reported(real_result):
    _, report = real_result
    sk = report["skipped_lines"]
    if (V100_DIR / "E3_outer_loop").is_dir():
        assert sk["total"]["field_count"] > 0 and sk["total"]["other_gpu"] > 0
    # the E1 and E2 files are clean; every quirk is in E3
    assert all(name.startswith("E3_outer_loop/") for name in sk["by_file"])


@needs_data
def test_packaged_fit_is_current(real_result):
    # The committed JSON must be what `gridtwin calibrate gpu --write` writes today
    # (coefficients rounded to 6 significant digits).
    fit, _ = real_result
    packaged = load_gpu_fit()
    assert (packaged.tau_down_s, packaged.tau_up_s) == (fit.tau_down_s, fit.tau_up_s)
    assert (packaged.r_th_k_per_w, packaged.tau_th_s, packaged.ambient_c) == (
        fit.r_th_k_per_w, fit.tau_th_s, fit.ambient_c)
    assert packaged.cap_tracking == pytest.approx(fit.cap_tracking, rel=1e-5)
    assert packaged.smooth_min_order == pytest.approx(fit.smooth_min_order, rel=1e-5)
    for w, c in fit.workloads.items():
        for k, v in dataclasses.asdict(c).items():
            assert getattr(packaged.workloads[w], k) == pytest.approx(v, rel=1e-5), (w, k)


@needs_data
def test_cli_json_on_real_data(capsys):
    assert main(["calibrate", "gpu", "--data", str(V100_DIR), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cells"] == 36 and report["loo_mae_pct"] <= 2.5
    assert {"loo_mae_pct_by_workload", "loo_mae_pct_cap_bound", "best_efficiency", "step_response",
            "skipped_lines"} <= set(report)


def test_profile_rise_delay_equals_the_calibrated_dead_time_fit():
    """The fleet's rise model (delay + lag) is the dead-time fit that `gridtwin calibrate gpu`
    reports for the E2 step-up (rounded to 0.1 ms)."""
    from traces.v100_telemetry import read_e2_step_plan, read_v100_telemetry
    from twin.calibrate.gpu import WORKLOAD_GPU, fit_step_dynamics, locate_data
    from twin.physics.gpu import GPU_PROFILES

    data = shared_data_dir() / "v100_telemetry"
    if not (data / "E2_inner_loop").is_dir():
        pytest.skip(f"real V100 data not found under {data}")
    paths = locate_data(data)
    tel, _ = read_v100_telemetry(paths.e2_telemetry, WORKLOAD_GPU)
    dyn = fit_step_dynamics(tel, read_e2_step_plan(paths.e2_plan))
    up = next(s for s in dyn["steps"] if s["label"] == "step-up")
    v100 = GPU_PROFILES["V100-SXM2-32GB"]
    assert v100.rise_delay_s == pytest.approx(up["lsq_dead_time_lag"]["dead_time_s"], abs=5e-5)
    assert v100.tau_up_after_delay_s == pytest.approx(up["lsq_dead_time_lag"]["tau_s"], abs=5e-5)
