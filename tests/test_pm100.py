"""Tests of traces.pm100: PM100 job-table reader, PM100-like writer, whole-week rebasing.

No real PM100 data is used: files come from write_pm100_like or are built row by row.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from traces import pm100

T0 = datetime(2020, 5, 4, tzinfo=UTC)  # a Monday, like PM100's first weeks
DAY = timedelta(days=1)
TS = pa.timestamp("ns", tz="UTC")


def _write_rows(path, rows, *, naive=False, drop=()):
    """Minimal PM100 table from dicts (times as seconds after T0, power lists in W)."""
    base = pd.Timestamp(T0).value
    ts_type = pa.timestamp("ns") if naive else TS

    def times(key):
        return pa.array([None if r[key] is None else base + r[key] * 10**9 for r in rows], ts_type)

    cols = {
        "job_id": pa.array([r["job_id"] for r in rows], pa.int64()),
        "submit_time": times("submit"),
        "start_time": times("start"),
        "end_time": times("end"),
        "time_limit": pa.array([r.get("time_limit", 60) for r in rows], pa.int64()),
        "num_nodes_alloc": pa.array([r.get("nodes", 1) for r in rows], pa.int64()),
        "num_gpus_alloc": pa.array([r.get("gpus", 4) for r in rows], pa.int64()),
    }
    for c in ("node", "cpu", "mem"):
        cols[f"{c}_power_consumption"] = pa.array([r[c] for r in rows], pa.list_(pa.int64()))
    table = pa.table({k: v for k, v in cols.items() if k not in drop})
    pq.write_table(table, path, row_group_size=1)
    return path


def _job(job_id, start, end, n=None, node=600, cpu=200, mem=50, **kw):
    n = round((end - start) / 20) if n is None else n
    return dict(job_id=job_id, submit=start - 60, start=start, end=end,
                node=[node] * n, cpu=[cpu] * n, mem=[mem] * n, **kw)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("pm100") / "job_table.parquet"
    info = pm100.write_pm100_like(path, n_jobs=2000, start=T0, days=4, seed=3, rows_per_group=100)
    return path, info


# ------------------------------------------------------------------------ window semantics


def test_window_keeps_jobs_overlapping_edges_and_only_those(small):
    path, _ = small
    w0, w1 = T0 + 1.5 * DAY, T0 + 2.5 * DAY
    jobs, meta = pm100.read_pm100(path, w0, w1)
    raw = pq.read_table(path, columns=["job_id", "start_time", "end_time"]).to_pandas()
    w0_ts, w1_ts = pd.Timestamp(w0), pd.Timestamp(w1)
    overlap = raw[(raw.start_time < w1_ts) & (raw.end_time > w0_ts)]
    assert sorted(jobs.job_id) == sorted(overlap.job_id)
    # jobs straddling each edge exist in this file and are in
    left = raw[(raw.start_time < w0_ts) & (raw.end_time > w0_ts)]
    right = raw[(raw.start_time < w1_ts) & (raw.end_time > w1_ts)]
    assert len(left) > 0 and len(right) > 0
    assert set(left.job_id) <= set(jobs.job_id) and set(right.job_id) <= set(jobs.job_id)
    # jobs entirely before or after are out
    outside = raw[(raw.end_time <= w0_ts) | (raw.start_time >= w1_ts)]
    assert len(outside) > 0 and not set(outside.job_id) & set(jobs.job_id)
    assert meta["n_jobs"] == len(jobs) == meta["rows_in_window"]
    assert meta["window"] == (w0_ts, w1_ts)
    assert meta["row_groups_read"] < meta["row_groups_total"] == 20


def test_edges_are_half_open(tmp_path):
    # job a ends exactly at the window start, b starts exactly at its end: both out;
    # c starts exactly at the window start: in.
    path = _write_rows(tmp_path / "t.parquet", [
        _job(1, 0, 600), _job(2, 600, 1200), _job(3, 1200, 1800), _job(4, 1800, 2400),
    ])
    jobs, _ = pm100.read_pm100(path, T0 + timedelta(seconds=1200), T0 + timedelta(seconds=1800))
    assert list(jobs.job_id) == [3]
    jobs, _ = pm100.read_pm100(path, T0 + timedelta(seconds=1199), T0 + timedelta(seconds=1801))
    assert list(jobs.job_id) == [2, 3, 4]


def test_columns_dtypes_and_units(small):
    path, _ = small
    jobs, meta = pm100.read_pm100(path, T0 + DAY, T0 + 2 * DAY)
    assert tuple(jobs.columns) == pm100.PM100_JOB_COLUMNS
    assert jobs.job_id.dtype == np.int64 and jobs.num_nodes.dtype == np.int64
    assert jobs.num_gpus.dtype == np.int64 and jobs.run_time_s.dtype == np.float64
    for c in ("submit_time", "start_time", "end_time", "power_t0"):
        assert str(jobs[c].dtype) == "datetime64[ns, UTC]", c
    assert (jobs.power_t0 == jobs.start_time).all()
    assert (jobs.run_time_s == (jobs.end_time - jobs.start_time).dt.total_seconds()).all()
    raw = pq.read_table(path, columns=["job_id", "time_limit"]).to_pandas().set_index("job_id")
    limit_min = raw.loc[jobs.job_id, "time_limit"].to_numpy()
    assert (jobs.time_limit_s.to_numpy() == 60.0 * limit_min).all()
    assert meta["sample_period_s"] == 20.0 and meta["naming"] == "current"
    for node, gpu, host in zip(jobs.node_power_w, jobs.gpu_power_w, jobs.host_power_w):
        assert node.dtype == np.float64 and node.shape == gpu.shape == host.shape
        assert (gpu >= 0).all()
        np.testing.assert_array_equal(host, node - gpu)
    assert (jobs.start_time.diff().dropna() >= pd.Timedelta(0)).all()


def test_window_outside_the_trace_raises_with_covered_range(small):
    path, info = small
    # a window that misses the trace entirely is refused, naming the covered range
    with pytest.raises(ValueError, match="covers") as e:
        pm100.read_pm100(path, T0 - 3 * DAY, T0 - 2 * DAY)
    assert str(info["first_start"]) in str(e.value) and str(info["last_end"]) in str(e.value)
    with pytest.raises(ValueError, match="outside"):
        pm100.read_pm100(path, T0 + 10 * DAY, T0 + 30 * DAY)
    # one that only partly overlaps it is read (the part outside simply has no jobs)
    jobs, _ = pm100.read_pm100(path, T0 - DAY, T0 + DAY)
    assert len(jobs) > 0


def test_empty_window_keeps_columns_and_dtypes(tmp_path):
    path = _write_rows(tmp_path / "t.parquet", [_job(1, 0, 600), _job(2, 86400, 87000)])
    jobs, meta = pm100.read_pm100(path, T0 + timedelta(hours=2), T0 + timedelta(hours=3))
    assert len(jobs) == 0 and tuple(jobs.columns) == pm100.PM100_JOB_COLUMNS
    assert jobs.job_id.dtype == np.int64 and str(jobs.start_time.dtype) == "datetime64[ns, UTC]"
    assert meta["row_groups_read"] == 0 and meta["row_groups_total"] == 2


def test_naive_window_or_reversed_window_raises(small):
    path, _ = small
    with pytest.raises(ValueError, match="timezone-aware"):
        pm100.read_pm100(path, datetime(2020, 5, 5), datetime(2020, 5, 6))
    with pytest.raises(ValueError, match="end > start"):
        pm100.read_pm100(path, T0 + 2 * DAY, T0 + DAY)


# ------------------------------------------------------------------------ namings and schema


def test_old_naming_reads_node_power_and_says_gpu_split_unavailable(tmp_path):
    kw = {"n_jobs": 300, "start": T0, "days": 1, "seed": 5, "rows_per_group": 50}
    pm100.write_pm100_like(tmp_path / "new.parquet", **kw)
    pm100.write_pm100_like(tmp_path / "old.parquet", naming="old", **kw)
    names = pq.read_schema(tmp_path / "old.parquet").names
    assert "power_consumption" in names and "num_cpus_alloc" in names
    assert not any("cores_" in c or c.endswith("_power_consumption") for c in names)
    w = (T0 + timedelta(hours=6), T0 + timedelta(hours=18))
    new, meta_new = pm100.read_pm100(tmp_path / "new.parquet", *w)
    old, meta_old = pm100.read_pm100(tmp_path / "old.parquet", *w)
    assert (meta_new["naming"], meta_old["naming"]) == ("current", "old")
    assert meta_new["unavailable"] == {}
    assert set(meta_old["unavailable"]) == {"gpu_power_w", "host_power_w"}
    assert "cpu_power_consumption" in meta_old["unavailable"]["gpu_power_w"]
    assert len(old) == len(new) > 0
    for a, b in zip(old.node_power_w, new.node_power_w):  # same seed: same node power
        np.testing.assert_array_equal(a, b)
    assert old.gpu_power_w.isna().all() and old.host_power_w.isna().all()
    pd.testing.assert_frame_equal(
        old.drop(columns=["node_power_w", "gpu_power_w", "host_power_w"]),
        new.drop(columns=["node_power_w", "gpu_power_w", "host_power_w"]),
    )


def test_missing_columns_error_names_file_columns_and_alternatives(tmp_path):
    path = _write_rows(tmp_path / "t.parquet", [_job(1, 0, 600)],
                       drop=("end_time", "node_power_consumption", "cpu_power_consumption",
                             "mem_power_consumption"))
    with pytest.raises(ValueError) as e:
        pm100.read_pm100(path, T0, T0 + DAY)
    msg = str(e.value)
    assert str(path) in msg
    assert "end_time" in msg.split(";")[0] and "node_power_consumption" in msg.split(";")[0]
    assert "power_consumption (older revision" in msg and "cpu_power_consumption" in msg
    # current naming with the CPU list missing: that one is named
    path2 = _write_rows(tmp_path / "t2.parquet", [_job(1, 0, 600)], drop=("cpu_power_consumption",))
    with pytest.raises(ValueError, match=r"missing column\(s\) cpu_power_consumption \(current"):
        pm100.read_pm100(path2, T0, T0 + timedelta(seconds=600))


def test_naive_timestamp_columns_are_refused(tmp_path):
    path = _write_rows(tmp_path / "t.parquet", [_job(1, 0, 600)], naive=True)
    with pytest.raises(ValueError, match="naive timestamp.*isAdjustedToUTC"):
        pm100.read_pm100(path, T0, T0 + timedelta(seconds=600))


def test_other_time_zone_is_converted_to_utc(tmp_path):
    path = _write_rows(tmp_path / "t.parquet", [_job(7, 0, 600)])
    t = pq.read_table(path)
    rome = pa.timestamp("ns", tz="Europe/Rome")
    for c in ("submit_time", "start_time", "end_time"):
        t = t.set_column(t.schema.get_field_index(c), c, t[c].cast(rome))
    pq.write_table(t, tmp_path / "rome.parquet")
    jobs, _ = pm100.read_pm100(tmp_path / "rome.parquet", T0, T0 + timedelta(seconds=600))
    assert jobs.start_time.iloc[0] == pd.Timestamp(T0)
    assert str(jobs.start_time.dtype) == "datetime64[ns, UTC]"


# ------------------------------------------------------------------------ bad rows


def test_each_bad_kind_is_dropped_and_counted_exactly(tmp_path):
    bad = {k: i + 2 for i, k in enumerate(pm100.DROP_REASONS)}  # 2, 3, 4, ... distinct counts
    info = pm100.write_pm100_like(tmp_path / "bad.parquet", n_jobs=1500, start=T0, days=2,
                                  seed=11, rows_per_group=100, bad_rows=bad)
    jobs, meta = pm100.read_pm100(tmp_path / "bad.parquet", info["first_start"], info["last_end"])
    assert meta["dropped"] == bad
    assert meta["rows_in_window"] == 1500 == meta["n_jobs"] + sum(meta["dropped"].values())
    assert len(jobs) == 1500 - sum(bad.values())
    assert all((p >= 0).all() and p.size > 0 for p in jobs.node_power_w)


def test_clean_file_drops_nothing_and_counts_every_reason_as_zero(small):
    path, info = small
    _, meta = pm100.read_pm100(path, info["first_start"], info["last_end"])
    assert meta["dropped"] == dict.fromkeys(pm100.DROP_REASONS, 0)
    assert meta["n_jobs"] == info["n_rows"] == 2000
    assert meta["row_groups_read"] == meta["row_groups_total"] == info["row_groups"]


def test_power_length_tolerance_boundary_and_null_list(tmp_path):
    # run 600 s -> 30 samples expected; tolerance max(3, 2 % of 30) = 3 samples.
    rows = [_job(1, 0, 600, n=33), _job(2, 0, 600, n=27), _job(3, 0, 600, n=34),
            _job(4, 0, 600, n=26), _job(5, 0, 600)]
    rows[4].update(node=None)  # a null list counts as an empty series
    path = _write_rows(tmp_path / "t.parquet", rows)
    jobs, meta = pm100.read_pm100(path, T0, T0 + timedelta(seconds=600))
    assert list(jobs.job_id) == [1, 2]
    assert meta["dropped"]["power_length_mismatch"] == 2
    assert meta["dropped"]["empty_power_series"] == 1
    jobs, meta = pm100.read_pm100(path, T0, T0 + timedelta(seconds=600), check_power_length=False)
    assert list(jobs.job_id) == [1, 2, 3, 4]


def test_missing_times_counted_in_every_window_they_could_overlap(tmp_path):
    rows = [_job(1, 0, 600), _job(2, 600, 1200), _job(3, 1200, 1800),
            _job(4, 0, 600), _job(5, 0, 600)]
    rows[3].update(end=None)            # started at 0, end unknown: could overlap any later window
    rows[4].update(start=None, end=None)  # both unknown: every window
    path = _write_rows(tmp_path / "t.parquet", rows)
    _, meta = pm100.read_pm100(path, T0 + timedelta(seconds=1300), T0 + timedelta(seconds=1800))
    assert meta["dropped"]["missing_times"] == 2 and meta["n_jobs"] == 1


def test_gpus_above_node_capacity_is_bad_allocation(tmp_path):
    rows = [_job(1, 0, 600, nodes=2, gpus=9), _job(2, 0, 600, nodes=2, gpus=8)]
    path = _write_rows(tmp_path / "t.parquet", rows)
    jobs, meta = pm100.read_pm100(path, T0, T0 + timedelta(seconds=600))
    assert list(jobs.job_id) == [2] and meta["dropped"]["bad_allocation"] == 1
    jobs, _ = pm100.read_pm100(path, T0, T0 + timedelta(seconds=600), gpus_per_node=6)
    assert list(jobs.job_id) == [1, 2]


# ------------------------------------------------------------------------ GPU power rule


def test_gpu_power_derivation_by_hand_and_last_row_kept(tmp_path):
    # 2 nodes, 60 s -> 3 samples. Per node 2 NICs x 21 W + NVMe 45 W = 87 W; x 2 nodes = 174 W.
    #   gpu[0] = 2000 - 300 - 100 - 174 = 1426 W
    #   gpu[1] = 1500 - 280 -  90 - 174 =  956 W
    #   gpu[2] =  400 - 200 -  80 - 174 =  -54 W -> clamped to 0 W
    #   host   = node - gpu = [574, 544, 400] W
    row = {"job_id": 42, "submit": 0, "start": 60, "end": 120, "nodes": 2, "gpus": 8,
           "node": [2000, 1500, 400], "cpu": [300, 280, 200], "mem": [100, 90, 80]}
    path = _write_rows(tmp_path / "t.parquet", [_job(41, 0, 120), row])  # the hand row is last
    jobs, _ = pm100.read_pm100(path, T0, T0 + timedelta(seconds=120))
    assert list(jobs.job_id) == [41, 42]  # the published reader's range(n - 1) would lose 42
    j = jobs.set_index("job_id").loc[42]
    np.testing.assert_array_equal(j.node_power_w, [2000.0, 1500.0, 400.0])
    np.testing.assert_array_equal(j.gpu_power_w, [1426.0, 956.0, 0.0])
    np.testing.assert_array_equal(j.host_power_w, [574.0, 544.0, 400.0])
    assert j.power_t0 == pd.Timestamp(T0) + pd.Timedelta(seconds=60)
    np.testing.assert_array_equal(pm100.derive_gpu_power_w(2000, 300, 100, 2), 1426.0)


# ------------------------------------------------------------------------ pruning


@pytest.fixture(scope="module")
def pm100_sized(tmp_path_factory):
    """231 000 jobs over 160 days, short power lists, row groups of 1000 rows (~1 s, ~25 MB)."""
    path = tmp_path_factory.mktemp("pm100big") / "job_table.parquet"
    info = pm100.write_pm100_like(path, n_jobs=231_000, start=T0, days=160, seed=2020,
                                  rows_per_group=1000, power_samples="short")
    return path, info


def test_reading_one_day_touches_few_row_groups(pm100_sized):
    path, info = pm100_sized
    assert info["row_groups"] == 231
    w0, w1 = T0 + 80 * DAY, T0 + 81 * DAY
    jobs, meta = pm100.read_pm100(path, w0, w1, check_power_length=False)
    assert meta["row_groups_total"] == 231
    assert 1 <= meta["row_groups_read"] <= 0.05 * 231  # brief: <= 5 %; here 3 of 231
    assert meta["rows_read"] == 1000 * meta["row_groups_read"]
    # pruning lost nothing: same jobs as a brute-force scan of the whole file
    raw = pq.read_table(path, columns=["job_id", "start_time", "end_time"]).to_pandas()
    expect = raw[(raw.start_time < pd.Timestamp(w1)) & (raw.end_time > pd.Timestamp(w0))]
    assert sorted(jobs.job_id) == sorted(expect.job_id) and len(jobs) > 1000
    # the days are ~1444 jobs; with the length check on, 1-3 samples fail for long jobs
    _, strict = pm100.read_pm100(path, w0, w1)
    assert strict["n_jobs"] + strict["dropped"]["power_length_mismatch"] == len(jobs)


# ------------------------------------------------------------------------ writer


def test_writer_schema_sorted_and_seeded(tmp_path):
    kw = {"n_jobs": 500, "start": T0, "days": 2, "rows_per_group": 128}
    a = pm100.write_pm100_like(tmp_path / "a.parquet", seed=1, **kw)
    pm100.write_pm100_like(tmp_path / "b.parquet", seed=1, **kw)
    pm100.write_pm100_like(tmp_path / "c.parquet", seed=2, **kw)
    ta, tb, tc = (pq.read_table(tmp_path / f"{x}.parquet") for x in "abc")
    assert ta.equals(tb) and not ta.equals(tc)
    documented = [  # PM100.md, in its order
        "cores_alloc_layout", "cores_allocated", "cores_per_task", "derived_ec",
        "eligible_time", "end_time", "group_id", "job_id", "job_state", "nodes",
        "num_cores_req", "num_cores_alloc", "num_gpus_req", "num_gpus_alloc", "num_nodes_req",
        "num_nodes_alloc", "mem_req", "mem_alloc", "num_tasks", "partition", "priority", "qos",
        "req_nodes", "run_time", "shared", "start_time", "state_reason", "submit_time",
        "threads_per_core", "time_limit", "user_id", "node_power_consumption",
        "cpu_power_consumption", "mem_power_consumption",
    ]
    assert ta.schema.names == documented
    for c in ("node_power_consumption", "cpu_power_consumption", "mem_power_consumption", "nodes"):
        assert ta.schema.field(c).type == pa.list_(pa.int64()), c
    for c in ("submit_time", "start_time", "end_time", "eligible_time"):
        assert ta.schema.field(c).type == TS, c
    md = pq.ParquetFile(tmp_path / "a.parquet").metadata
    assert a["row_groups"] == md.num_row_groups == 4 and md.row_group(0).num_rows == 128
    df = ta.select(["start_time", "end_time", "submit_time", "num_nodes_alloc", "nodes",
                    "run_time", "node_power_consumption"]).to_pandas()
    assert df.start_time.is_monotonic_increasing
    assert (df.submit_time <= df.start_time).all()
    assert (df.nodes.map(len) == df.num_nodes_alloc).all()
    assert (df.run_time == (df.end_time - df.start_time).dt.total_seconds()).all()
    n = df.node_power_consumption.map(len)
    assert (np.abs(n - df.run_time / 20) <= 1).all()  # full lists: round(run / 20 s)


def test_writer_rejects_bad_arguments(tmp_path):
    kw = {"n_jobs": 10, "start": T0, "days": 1, "seed": 0}
    with pytest.raises(ValueError, match="allowed"):
        pm100.write_pm100_like(tmp_path / "x.parquet", **{**kw, "power_samples": "some"})
    with pytest.raises(ValueError, match="unknown kind"):
        pm100.write_pm100_like(tmp_path / "x.parquet", bad_rows={"cosmic_ray": 1}, **kw)
    with pytest.raises(ValueError, match="naming='current'"):
        pm100.write_pm100_like(
            tmp_path / "x.parquet", naming="old", bad_rows={"power_columns_differ": 1}, **kw
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        pm100.write_pm100_like(tmp_path / "x.parquet", **{**kw, "start": datetime(2020, 5, 4)})


# ------------------------------------------------------------------------ rebasing


def test_rebase_offset_whole_weeks_keeps_weekday_and_time_of_day():
    rng = np.random.default_rng(5)
    trace_start = datetime(2020, 7, 5, 9, 30, tzinfo=UTC)
    for _ in range(200):
        scenario = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(
            seconds=float(rng.uniform(-400, 400) * 86400))
        offset = pm100.rebase_offset(scenario, trace_start)
        assert offset % pd.Timedelta(days=7) == pd.Timedelta(0)
        delta = pd.Timestamp(scenario) - pd.Timestamp(trace_start)
        assert abs(offset - delta) <= pd.Timedelta(days=3.5)
        w0, w1, off = pm100.rebased_window(scenario, timedelta(days=2), trace_start)
        assert off == offset and w1 - w0 == pd.Timedelta(days=2)
        assert w0 + offset == pd.Timestamp(scenario)
        assert w0.weekday() == pd.Timestamp(scenario).weekday()
        assert w0.time() == pd.Timestamp(scenario).time()
        assert abs(w0 - pd.Timestamp(trace_start)) <= pd.Timedelta(days=3.5)


def test_rebased_window_picks_nearest_matching_day():
    # Scenario starts Monday 2025-01-06 00:00; asked for Sunday 2020-07-05 00:00. The
    # Mondays 00:00 around it are 2020-06-29 (6 d before) and 2020-07-06 (1 d after).
    w0, w1, off = pm100.rebased_window(
        datetime(2025, 1, 6, tzinfo=UTC), timedelta(hours=6),
        datetime(2020, 7, 5, tzinfo=UTC))
    assert w0 == pd.Timestamp("2020-07-06", tz="UTC") and w1 == w0 + pd.Timedelta(hours=6)
    assert off == pd.Timedelta(weeks=235)
    with pytest.raises(ValueError, match="duration"):
        pm100.rebased_window(datetime(2025, 1, 6, tzinfo=UTC), timedelta(0), T0)


def test_rebased_window_reads_the_trace(small):
    path, _ = small
    scenario = datetime(2025, 3, 3, 12, tzinfo=UTC)  # a Monday noon
    w0, w1, off = pm100.rebased_window(scenario, timedelta(hours=12), T0 + 1.2 * DAY)
    assert w0 == pd.Timestamp(T0) + pd.Timedelta(hours=12)  # Monday 2020-05-04 noon
    jobs, _ = pm100.read_pm100(path, w0, w1)
    shifted = jobs.start_time + off
    assert (shifted < pd.Timestamp(scenario) + pd.Timedelta(hours=12)).all()
    assert ((jobs.end_time + off) > pd.Timestamp(scenario)).all()
