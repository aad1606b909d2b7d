"""The island table format (twin/control/island_table.py) and the twin's island latency
model (twin/facility/island.py).

The format tests decode the header with offsets typed from docs/island_table.md, so the
document and the code cannot drift apart; every corruption must be refused by the check
that names it. The latency tests use degenerate (constant) distributions where the
arithmetic is checked by hand, and seeded draws for bounds and medians.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from traces.synthetic import shared_data_dir
from twin.control import island_table
from twin.control.island_table import (
    HEADER_SIZE,
    MAGIC,
    IslandTableError,
    decode_table,
    encode_table,
    read_table,
    write_table,
)
from twin.facility.island import (
    NVIDIA_SMI_E7,
    NVML_ISLAND,
    IslandLatencyModel,
    SafetyIsland,
    Triangular,
    TruncatedNormal,
    Uniform,
    lag_settle_time_s,
    serial_write_done_s,
)
from twin.physics.gpu import GPU_PROFILES, board_power_step

LEVELS = (49.7, 49.6, 49.5)
CAPS = np.array([[250.0, 260.0, 240.0], [220.0, 230.0, 210.0], [200.0, 205.5, 180.25]])
V100 = GPU_PROFILES["V100-SXM2-32GB"]


def _table_bytes(**kw) -> bytes:
    args = {"levels_hz": LEVELS, "caps_w": CAPS, "created_s": 1.7e9, "meta": {"tier3": "u=0.9 r=0.2"}}
    args.update(kw)
    return encode_table(args.pop("levels_hz"), args.pop("caps_w"), args.pop("created_s"), args.pop("meta"), **args)


def _refused(data: bytes, check: str, match: str):
    with pytest.raises(IslandTableError, match=match) as err:
        decode_table(data)
    assert err.value.check == check
    return err.value


# ---------------------------------------------------------------- format


def test_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(7)
    caps = np.sort(rng.uniform(100.0, 300.0, (4, 37)).astype(np.float32), axis=0)[::-1]  # deeper: lower
    caps = np.r_[caps[:3], np.full((1, 37), 300.0, np.float32)]  # release row restores 300 W
    ids = rng.integers(0, 2**32, 37, dtype=np.uint64)
    path = write_table(tmp_path / "island.tbl", (49.7, 49.6, 49.5, 49.9), caps, 1.7e9 + 0.125,
                       {"who": "tier3", "u": 0.9}, kinds=("trigger",) * 3 + ("release",), cohort_ids=ids,
                       expires_s=1.7e9 + 3600.0)
    t = read_table(path)
    assert t.caps_w.dtype == np.float32 and t.caps_w.tobytes() == caps.tobytes()
    assert list(t.levels_hz) == [49.7, 49.6, 49.5, 49.9]  # exactly the Python literals
    assert t.kinds == ("trigger", "trigger", "trigger", "release")
    assert np.array_equal(t.cohort_ids, ids) and t.n_cohorts == 37 and t.n_levels == 4
    assert (t.created_s, t.expires_s) == (1.7e9 + 0.125, 1.7e9 + 3600.0)
    assert dict(t.meta) == {"who": "tier3", "u": 0.9}
    # re-encoding the decoded table gives the same bytes
    again = encode_table(t.levels_hz, t.caps_w, t.created_s, t.meta, kinds=t.kinds, cohort_ids=t.cohort_ids,
                         expires_s=t.expires_s)
    assert again == path.read_bytes()
    assert t.payload_crc32 == zlib.crc32(again[HEADER_SIZE:])
    assert [p.name for p in tmp_path.iterdir()] == ["island.tbl"]  # no temporary file left


def test_layout_matches_the_document():
    # offsets as docs/island_table.md gives them, decoded by hand
    data = _table_bytes(expires_s=math.inf)
    assert HEADER_SIZE == 56 and data[0:8] == b"GTISLAND" == MAGIC
    version, header_size, n_levels, n_cohorts = struct.unpack_from("<4I", data, 8)
    created_s, expires_s = struct.unpack_from("<2d", data, 24)
    meta_len, payload_len, payload_crc, header_crc = struct.unpack_from("<4I", data, 40)
    assert (version, header_size, n_levels, n_cohorts) == (1, 56, 3, 3)
    assert created_s == 1.7e9 and expires_s == math.inf
    assert header_crc == zlib.crc32(data[:52]) and payload_crc == zlib.crc32(data[56:])
    assert payload_len == len(data) - 56 == 4 * (2 * 3 + 3 + 9) + meta_len
    p = 56
    assert struct.unpack_from("<3I", data, p) == (49700, 49600, 49500)          # level_millihz
    assert struct.unpack_from("<3I", data, p + 12) == (0, 0, 0)                 # level_kind: triggers
    assert struct.unpack_from("<3I", data, p + 24) == (0, 1, 2)                 # cohort_id (default)
    caps = struct.unpack_from("<9f", data, p + 36)                              # level-major float32
    assert caps == tuple(CAPS.astype(np.float32).ravel().tolist())
    assert data[p + 72:] == b'{"tier3":"u=0.9 r=0.2"}' and meta_len == 23


def test_bad_magic_is_refused():
    data = bytearray(_table_bytes())
    data[0:8] = b"GTISLANX"
    _refused(bytes(data), "magic", "expected b'GTISLAND'")
    _refused(b"\x89PNG\r\n\x1a\n" + bytes(60), "magic", "not an island table")


def test_bad_version_is_refused():
    _refused(_table_bytes(_version=2), "version", "version 2; this reader reads version 1")
    data = bytearray(_table_bytes())
    data[8] = 7  # corrupted version field: reported as a version, before any CRC
    _refused(bytes(data), "version", "version 7")


def test_bad_crcs_are_refused():
    data = _table_bytes()
    hdr = bytearray(data)
    hdr[20] ^= 0x01  # n_cohorts 3 -> 2
    _refused(bytes(hdr), "header_crc", r"header CRC-32 .*\(header corrupted\)")
    pay = bytearray(data)
    pay[56 + 36] ^= 0x40  # a bit of the first cap
    _refused(bytes(pay), "payload_crc", r"payload CRC-32 .*\(payload corrupted\)")
    meta = bytearray(data)
    meta[-2] ^= 0x20  # a bit of the meta text: also covered by the payload CRC
    _refused(bytes(meta), "payload_crc", "payload corrupted")


def test_truncation_and_trailing_bytes_are_refused():
    data = _table_bytes()
    for n in (0, 7, 55):
        _refused(data[:n], "truncated", f"{n} bytes; the header alone is 56")
    _refused(data[:-1], "truncated", f"payload has {len(data) - 57} of {len(data) - 56} bytes")
    _refused(data[:60], "truncated", "payload has 4 of")
    _refused(data + b"\x00", "trailing", "1 bytes after the payload")


def test_inconsistent_length_and_counts_are_refused():
    data = bytearray(_table_bytes())

    def reseal(buf):  # a consistent header CRC, so the later checks are reached
        buf[52:56] = struct.pack("<I", zlib.crc32(bytes(buf[:52])))
        return bytes(buf)

    bad = bytearray(data)
    bad[44:48] = struct.pack("<I", 99)  # payload_len
    _refused(reseal(bad), "length", "payload length 99; 3 levels x 3 cohorts")
    bad = bytearray(data)
    bad[16:20] = struct.pack("<I", 0)  # n_levels
    _refused(reseal(bad), "counts", "n_levels = 0")
    bad = bytearray(data)
    bad[12:16] = struct.pack("<I", 64)
    _refused(bytes(bad), "header_size", "header size 64")


def test_content_rules_at_write_and_read(tmp_path):
    with pytest.raises(IslandTableError, match="strictly decrease") as e:
        _table_bytes(levels_hz=(49.5, 49.6, 49.7))
    assert e.value.check == "content"
    with pytest.raises(IslandTableError, match="cohort 2: cap rises from 210 W at 49.6 Hz to 215 W"):
        _table_bytes(caps_w=np.r_[CAPS[:2], [[200.0, 205.0, 215.0]]])
    with pytest.raises(IslandTableError, match=r"cap\[1\]\[0\] = 0.0 W"):
        _table_bytes(caps_w=np.r_[CAPS[:1], [[0.0, 1.0, 1.0]], CAPS[2:]])
    with pytest.raises(IslandTableError, match="whole number of mHz"):
        _table_bytes(levels_hz=(49.7, 49.6, 49.5005))
    with pytest.raises(IslandTableError, match="at most one release row"):
        _table_bytes(kinds=("trigger", "release", "trigger"))
    with pytest.raises(IslandTableError, match="release level 49.6 Hz must lie above"):
        _table_bytes(levels_hz=(49.7, 49.6), caps_w=CAPS[:2], kinds=("trigger", "release"))
    with pytest.raises(IslandTableError, match="3 levels but caps_w has 2 rows"):
        _table_bytes(caps_w=CAPS[:2])
    # a sealed file whose content breaks a rule (here a rising cap) is refused on read too
    data = bytearray(_table_bytes())
    off = 56 + 36 + 4 * 3  # level 49.6, cohort 0
    data[off:off + 4] = struct.pack("<f", 255.0)
    data[48:52] = struct.pack("<I", zlib.crc32(bytes(data[56:])))
    data[52:56] = struct.pack("<I", zlib.crc32(bytes(data[:52])))
    path = tmp_path / "t.tbl"
    path.write_bytes(bytes(data))
    with pytest.raises(IslandTableError, match=f"{path}: cohort 0: cap rises") as e:
        read_table(path)
    assert e.value.check == "content"


def _validate_reference(millihz, kinds, caps_w):
    """The content rules as first written, with numpy on every row (the reference for
    island_table._validate, which runs the row rules on Python lists)."""
    lo, hi = island_table.LEVEL_RANGE_HZ
    for m in millihz:
        if not lo * 1000 < m < hi * 1000:
            raise IslandTableError("content", f"level {m / 1000:g} Hz outside ({lo:g}, {hi:g}) Hz")
    bad = [int(k) for k in kinds if int(k) not in (0, 1)]
    if bad:
        raise IslandTableError("content", f"level kind {bad[0]}: expected 0 (trigger) or 1 (release)")
    trig, rel = np.nonzero(kinds == 0)[0], np.nonzero(kinds == 1)[0]
    if trig.size == 0:
        raise IslandTableError("content", "no trigger row; expected at least one")
    if rel.size > 1 or (rel.size and rel[0] != kinds.size - 1) or np.any(np.diff(trig) != 1) or trig[0] != 0:
        raise IslandTableError("content", "rows must be the trigger rows first, then at most one release row")
    if np.any(np.diff(millihz[trig].astype(np.int64)) >= 0):
        raise IslandTableError("content", "trigger levels must strictly decrease (e.g. 49.7, 49.6, 49.5 Hz)")
    if rel.size and millihz[rel[0]] <= millihz[trig[0]]:
        raise IslandTableError("content", f"release level {millihz[rel[0]] / 1000:g} Hz must lie above the "
                                          f"highest trigger level {millihz[trig[0]] / 1000:g} Hz")
    if not np.all(np.isfinite(caps_w)) or np.any(caps_w <= 0.0):
        i, j = np.argwhere(~(np.isfinite(caps_w) & (caps_w > 0.0)))[0]
        raise IslandTableError("content", f"cap[{i}][{j}] = {float(caps_w[i, j])!r} W: expected a finite number > 0")
    tc = caps_w[trig]
    if np.any(np.diff(tc, axis=0) > 0.0):
        i, j = np.argwhere(np.diff(tc, axis=0) > 0.0)[0]
        raise IslandTableError("content", f"cohort {j}: cap rises from {tc[i, j]:g} W at "
                                          f"{millihz[i] / 1000:g} Hz to {tc[i + 1, j]:g} W at the deeper "
                                          f"{millihz[i + 1] / 1000:g} Hz; a deeper level must not raise a cap")


def _outcome(fn, *args):
    try:
        fn(*args)
    except IslandTableError as exc:
        return exc.check, str(exc)
    return None


def test_content_rules_equal_the_numpy_reference():
    # island_table._validate against the rules written with numpy on every row, on random
    # tables built to break each rule now and then (levels out of range or out of order,
    # unknown or misplaced kinds, caps NaN, +-inf, 0, -0, negative, tiny, rising with depth):
    # the same verdict and the same message for every table
    rng = np.random.default_rng(17)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e-300, 5e-324, 1e300]
    rules = ("ok", "level kind", "level ", "no trigger", "rows must", "trigger levels", "release level", "cap[",
             "cohort ")
    verdicts = set()
    for _ in range(3000):
        n_lv, n_co = int(rng.integers(1, 6)), int(rng.integers(1, 9))
        mhz = np.sort(rng.integers(49_000, 50_500, n_lv))[::-1]
        if rng.random() < 0.15:
            mhz[rng.integers(n_lv)] = rng.choice([40_000, 70_000, 39_999, 70_001, 45_000, 0])
        if rng.random() < 0.1:
            mhz = rng.permutation(mhz)
        kinds = np.zeros(n_lv, dtype=np.int64)
        if n_lv > 1 and rng.random() < 0.6:
            kinds[-1] = 1
            mhz[-1] = mhz[0] + rng.integers(-50, 300)
        if rng.random() < 0.1:
            kinds[rng.integers(n_lv)] = rng.choice([0, 1, 2, 7])
        caps = np.sort(rng.uniform(50.0, 400.0, (n_lv, n_co)), axis=0)[::-1].astype(np.float32).astype(float)
        if rng.random() < 0.2:
            caps[rng.integers(n_lv), rng.integers(n_co)] = rng.choice(specials)
        if rng.random() < 0.1 and n_lv > 1:
            caps[rng.integers(1, n_lv), rng.integers(n_co)] += 500.0
        args = (mhz.astype("<u4"), kinds.astype("<u4"), caps)
        got = _outcome(island_table._validate, *args)
        assert got == _outcome(_validate_reference, *args), args
        msg = got[1].split(": ", 2)[2] if got else "ok"
        verdicts.add(next(rule for rule in rules if msg.startswith(rule)))
    assert verdicts == set(rules)   # every rule, and acceptance, was exercised


def test_lookup_and_staleness():
    t = decode_table(_table_bytes(expires_s=1.7e9 + 3600.0))
    assert t.trigger_row_index(49.8) is None
    assert t.trigger_row_index(49.7) == 0 and t.trigger_row_index(49.55) == 1 and t.trigger_row_index(49.1) == 2
    np.testing.assert_array_equal(t.row(49.6), CAPS[1].astype(np.float32))
    with pytest.raises(KeyError, match="no trigger row at 49.8 Hz"):
        t.row(49.8)
    t.check_fresh(1.7e9 + 3600.0)
    with pytest.raises(IslandTableError, match="stale: expired") as e:
        t.check_fresh(1.7e9 + 3600.5)
    assert e.value.check == "stale"


# ---------------------------------------------------------------- island latency model


def _constant_model(rx=1e-3, lookup=1e-5, write=4e-3) -> IslandLatencyModel:
    return IslandLatencyModel("const", Uniform(rx, rx), Uniform(lookup, lookup), Uniform(write, write))


def test_serial_writes_within_a_host_parallel_across_hosts():
    t = decode_table(_table_bytes(levels_hz=LEVELS, caps_w=np.repeat(CAPS, 2, axis=1)))  # 6 cohorts
    # cohorts 0, 1, 2 on host 7 (1 GPU each); cohort 3 alone with 4 GPUs per host; 4, 5 on host 9
    island = SafetyIsland(t, [1, 1, 1, 4, 2, 1], host_of_cohort=[7, 7, 7, 3, 9, 9], model=_constant_model())
    a = island.activate(10.0, 49.6)
    start = 10.0 + 1e-3 + 1e-5
    # hand arithmetic: host 7 writes 1 + 1 + 1 GPUs; host 3 writes 4; host 9 writes 2 then 1
    np.testing.assert_allclose(a.cap_written_s - start, [4e-3, 8e-3, 12e-3, 16e-3, 8e-3, 12e-3], atol=1e-15)
    np.testing.assert_array_equal(a.caps_w, np.repeat(CAPS, 2, axis=1)[1].astype(np.float32))
    assert np.isnan(a.latency_s) and a.caps_written_latency_s == pytest.approx(1e-3 + 1e-5 + 16e-3)
    np.testing.assert_allclose(serial_write_done_s([0, 0, 5, 0], [1, 2, 3, 4], [1, 1, 2, 1]), [1, 3, 8, 7])


def test_settle_follows_the_fitted_lag():
    # 5 % band: tau * ln 20 = 15.6 ms * 2.9957 = 46.73 ms down, 248.7 ms * 2.9957 = 745.0 ms up
    assert lag_settle_time_s(275.0, 196.0, V100) == pytest.approx(0.0156 * math.log(20.0))
    assert lag_settle_time_s(198.0, 276.0, V100) == pytest.approx(0.2487 * math.log(20.0))
    assert lag_settle_time_s(200.0, 200.0, V100) == 0.0
    p_end, _ = board_power_step(275.0, 196.0, lag_settle_time_s(275.0, 196.0, V100), V100)
    assert p_end - 196.0 == pytest.approx(0.05 * (275.0 - 196.0))
    t = decode_table(_table_bytes())
    a = SafetyIsland(t, [1, 1, 1], host_of_cohort=[0, 0, 0], model=_constant_model()).activate(
        0.0, 49.5, power_w=[275.0, 150.0, 275.0], target_w=[196.0, 150.0, 180.0], dyn=V100)
    np.testing.assert_allclose(a.settled_s - a.cap_written_s, [0.0156 * math.log(20.0), 0.0, 0.0156 * math.log(20.0)])
    assert a.latency_s == pytest.approx(1e-3 + 1e-5 + 3 * 4e-3 + 0.0156 * math.log(20.0))


def test_activations_are_deterministic_per_seed_and_within_bounds():
    t = decode_table(_table_bytes())

    def run(seed):
        isl = SafetyIsland(t, [1, 1, 1], host_of_cohort=[0, 0, 0], seed=seed)
        return [isl.activate(float(k), 49.7, power_w=275.0, target_w=250.0, dyn=V100) for k in range(500)]

    a, b, c = run(3), run(3), run(4)
    assert all(np.array_equal(x.cap_written_s, y.cap_written_s) and np.array_equal(x.settled_s, y.settled_s)
               for x, y in zip(a, b))
    assert not np.array_equal(a[0].cap_written_s, c[0].cap_written_s)
    lo, hi = NVML_ISLAND.write_done_bounds_s(3)
    assert (lo, hi) == pytest.approx((0.29e-3 + 1e-6 + 3e-3, 1e-3 + 10e-6 + 15e-3))
    written = np.array([x.caps_written_latency_s for x in a])
    assert np.all((written >= lo) & (written <= hi))
    comp = {k: np.concatenate([x.components_s[k] for x in a]) for k in ("trigger_rx_s", "lookup_s", "cap_write_s")}
    assert comp["trigger_rx_s"].min() >= 0.29e-3 and comp["trigger_rx_s"].max() <= 1e-3
    assert comp["lookup_s"].min() >= 1e-6 and comp["lookup_s"].max() <= 10e-6
    assert comp["cap_write_s"].min() >= 1e-3 and comp["cap_write_s"].max() <= 5e-3  # paper: NVML <= 5 ms
    # one host: one receive draw shared by its three cohorts
    assert np.ptp(a[0].received_s - a[0].trigger_s) == 0.0


def test_latency_medians_of_the_two_models():
    # documented in docs/parameters.md (3 V100 on one host, step-down 275 -> 196 W)
    t = decode_table(_table_bytes())
    med = {}
    for model in (NVML_ISLAND, NVIDIA_SMI_E7):
        isl = SafetyIsland(t, [1, 1, 1], host_of_cohort=[0, 0, 0], model=model, seed=0)
        acts = [isl.activate(0.0, 49.5, power_w=275.0, target_w=196.0, dyn=V100) for _ in range(4000)]
        med[model.name] = (np.median([x.caps_written_latency_s for x in acts]) * 1e3,
                           np.median([x.latency_s for x in acts]) * 1e3)
    # NVML island: 0.59 ms receive + ~0 lookup + 3 x U(1, 5) ms (median of the sum 9 ms) = 9.6 ms
    assert med["nvml-island"][0] == pytest.approx(9.6, abs=0.2)
    assert med["nvml-island"][1] == pytest.approx(9.6 + 46.7, abs=0.2)
    # E7 (three serial nvidia-smi calls, idle GPUs): measured median over 90 trials 97.5 ms
    assert med["nvidia-smi-e7"][0] == pytest.approx(97.5, abs=0.5)


E7_DIR = shared_data_dir() / "v100_telemetry" / "E7_ffr_latency"


@pytest.mark.skipif(not (E7_DIR / "verdict.json").is_file(), reason=f"E7 data not found under {E7_DIR}")
def test_e7_profile_matches_the_measured_distribution():
    import pandas as pd

    runs = pd.concat([pd.read_csv(p) for p in sorted(E7_DIR.glob("*_runs.csv"))])
    measured = runs["e2e_latency_ms"].to_numpy()
    t = decode_table(_table_bytes())
    isl = SafetyIsland(t, [1, 1, 1], host_of_cohort=[0, 0, 0], model=NVIDIA_SMI_E7, seed=1)
    sim = np.array([isl.activate(0.0, 49.5).caps_written_latency_s for _ in range(4000)]) * 1e3
    assert np.median(sim) == pytest.approx(np.median(measured), abs=0.5)
    assert np.percentile(sim, 95) == pytest.approx(np.percentile(measured, 95), abs=1.5)


def test_distributions_validate_and_respect_bounds():
    rng = np.random.default_rng(0)
    x = TruncatedNormal(32.27e-3, 0.91e-3, 29.1e-3, 34.7e-3).sample(rng, (1000,))
    assert x.shape == (1000,) and x.min() >= 29.1e-3 and x.max() <= 34.7e-3
    assert np.mean(x) == pytest.approx(32.27e-3, abs=0.1e-3)
    with pytest.raises(ValueError, match="expected 0 <= low_s <= high_s"):
        Uniform(2e-3, 1e-3)
    with pytest.raises(ValueError, match="low_s <= mode_s <= high_s"):
        Triangular(1e-3, 0.5e-3, 2e-3)
    t = decode_table(_table_bytes())
    with pytest.raises(ValueError, match="expected 3 integers >= 1"):
        SafetyIsland(t, [1, 0, 1])
    isl = SafetyIsland(decode_table(_table_bytes(expires_s=100.0, created_s=0.0)), [1, 1, 1])
    with pytest.raises(IslandTableError, match="stale"):
        isl.activate(0.0, 49.7, now_epoch_s=101.0)


# ---------------------------------------------------------------- the C reader in the document

DOC = Path(__file__).resolve().parents[1] / "docs" / "island_table.md"


@pytest.fixture(scope="module")
def c_reader(tmp_path_factory):
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on PATH")
    src = re.search(r"```c\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL).group(1)
    d = tmp_path_factory.mktemp("c_reader")
    (d / "island_table_dump.c").write_text(src)
    exe = d / "island_table_dump"
    out = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Werror", "-o", str(exe), str(d / "island_table_dump.c")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return exe


def test_the_documented_c_reader_reads_python_tables(c_reader, tmp_path):
    path = write_table(tmp_path / "t.tbl", (49.7, 49.6, 49.5, 49.9), np.r_[CAPS, [[300.0, 300.0, 300.0]]], 1.7e9,
                       {"tier3": "x"}, kinds=("trigger",) * 3 + ("release",), cohort_ids=[4, 5, 6],
                       expires_s=1.7e9 + 3600.0)
    out = subprocess.run([str(c_reader), str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "created 1700000000.000 expires 1700003600.000 levels 4 cohorts 3",
        "trigger 49700 mHz: 4=250 5=260 6=240",
        "trigger 49600 mHz: 4=220 5=230 6=210",
        "trigger 49500 mHz: 4=200 5=205.5 6=180.25",
        "release 49900 mHz: 4=300 5=300 6=300",
    ]
    data = path.read_bytes()
    corrupt = {"magic": b"X" + data[1:], "version": data[:8] + b"\x02" + data[9:], "truncated": data[:-3],
               "trailing": data + b"\x00", "payload_crc": data[:60] + bytes([data[60] ^ 1]) + data[61:],
               "header_crc": data[:16] + bytes([data[16] ^ 1]) + data[17:]}
    for check, bad in corrupt.items():
        (tmp_path / "bad.tbl").write_bytes(bad)
        out = subprocess.run([str(c_reader), str(tmp_path / "bad.tbl")], capture_output=True, text=True, timeout=30)
        assert out.returncode == 1 and out.stderr.startswith(f"island table: {check}:"), (check, out.stderr)
        with pytest.raises(IslandTableError) as e:  # and Python names the same check
            decode_table(bad)
        assert e.value.check == check
