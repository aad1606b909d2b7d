"""``Recorder.append_rows`` (block stepping's bulk copy) writes what ``append`` row by row
writes: the same row groups, sums, maxima and plot means, bit for bit."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow.parquet as pq
import pytest

from twin.sim.recorder import Recorder

START = datetime(2025, 7, 15, tzinfo=UTC)
COLS = ("a_w", "b_c", "count")


def _record(path, rows, chunks, rows_per_group):
    rec = Recorder(path, COLS, {"count"}, START, 1.0, n_rows=len(rows), rows_per_group=rows_per_group)
    i = 0
    for c in chunks:
        if c == 1:
            rec.append(tuple(rows[i].tolist()))
        else:
            rec.append_rows(rows[i:i + c])
        i += c
    rec.close()
    return rec


@pytest.mark.parametrize("rows_per_group", [1, 7, 40, 1000])
def test_append_rows_equals_append_row_by_row(tmp_path, rows_per_group):
    rng = np.random.default_rng(5)
    n = 301
    rows = np.column_stack([rng.normal(size=n) * 1e3, rng.normal(size=n), rng.integers(0, 9, n).astype(float)])
    rows[rng.random(n) < 0.1, 1] = np.nan  # NaN cells (skipped by the sums and maxima)
    chunks, left = [], n
    while left:  # blocks of 1 (append) and of 2..60 rows, across the row-group boundaries
        c = min(left, int(rng.integers(1, 61)) if rng.random() < 0.7 else 1)
        chunks.append(c)
        left -= c
    one = _record(tmp_path / "one.parquet", rows, [1] * n, rows_per_group)
    bulk = _record(tmp_path / "bulk.parquet", rows, chunks, rows_per_group)
    a, b = pq.ParquetFile(tmp_path / "one.parquet"), pq.ParquetFile(tmp_path / "bulk.parquet")
    assert a.metadata.num_row_groups == b.metadata.num_row_groups
    assert [a.metadata.row_group(g).num_rows for g in range(a.metadata.num_row_groups)] == \
        [b.metadata.row_group(g).num_rows for g in range(b.metadata.num_row_groups)]
    ta, tb = a.read(), b.read()
    assert ta.schema.equals(tb.schema)
    for c in ta.column_names:  # NaN cells equal
        np.testing.assert_array_equal(ta[c].to_numpy(), tb[c].to_numpy())
    np.testing.assert_array_equal(one.sums, bulk.sums)
    np.testing.assert_array_equal(one.maxs, bulk.maxs)
    for x, y in zip(one.coarse()[1].values(), bulk.coarse()[1].values()):
        np.testing.assert_array_equal(x, y)
    assert one.n_rows == bulk.n_rows == n


def test_append_rows_of_nothing_and_exactly_one_group(tmp_path):
    rec = Recorder(tmp_path / "x.parquet", COLS, set(), START, 1.0, n_rows=8, rows_per_group=4)
    rec.append_rows(np.empty((0, 3)))
    assert rec._i == 0 and rec.n_rows == 0
    rec.append_rows(np.arange(12.0).reshape(4, 3))  # fills the group: written at once
    assert rec._i == 0 and rec.n_rows == 4
    rec.close()


@pytest.mark.parametrize("rows_per_group", [3, 1000])
def test_sums_and_maxima_skip_nan_and_the_file_reads_back(tmp_path, rows_per_group):
    """column_sum / column_max against numpy on the same rows: NaN cells skipped, an all-NaN
    column's maximum -inf and its sum 0, signed zeros, -inf; the parquet file (dictionary
    encoding for the integer counts only) reads back to the same values."""
    rows = np.array([[1.5, np.nan, 2.0], [-0.0, np.nan, 3.0], [np.nan, np.nan, 3.0], [7.25, np.nan, 1.0],
                     [-np.inf, np.nan, 0.0], [0.0, np.nan, 3.0], [-3.0, np.nan, 2.0]])
    rec = _record(tmp_path / "m.parquet", rows, [1] * len(rows), rows_per_group)
    assert rec.column_max("a_w") == 7.25 and rec.column_max("b_c") == -np.inf and rec.column_max("count") == 3.0
    assert rec.column_sum("b_c") == 0.0 and rec.column_sum("count") == 14.0
    assert rec.column_sum("a_w") == -np.inf
    neg = _record(tmp_path / "n.parquet", -np.abs(rows[[1, 2, 4]]), [1, 1, 1], rows_per_group)
    assert neg.column_max("a_w") == 0.0 and np.signbit(neg.column_max("a_w"))  # -0.0, as nanmax keeps it
    t = pq.read_table(tmp_path / "m.parquet")
    np.testing.assert_array_equal(t["a_w"].to_numpy(), rows[:, 0])
    np.testing.assert_array_equal(t["count"].to_numpy(), rows[:, 2].astype(np.int64))
    meta = pq.ParquetFile(tmp_path / "m.parquet").metadata.row_group(0)
    enc = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert "PLAIN_DICTIONARY" in enc["count"] or "RLE_DICTIONARY" in enc["count"]
    assert not any("DICTIONARY" in e for e in enc["a_w"])
