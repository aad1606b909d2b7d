"""The island-table write path's shortcuts (issue 9) against their reference paths.

* :func:`encode_decode_table` returns the bytes of :func:`encode_table` and a table equal,
  field for field (values, dtypes, memory layout, writeability), to what
  :func:`decode_table` reads back from them, and raises exactly what ``encode_table``
  raises, on random tables and on broken inputs.
* ``_validate`` gives the same verdict and message for the float32 caps as stored as for
  the same values in float64 (the reference kept the float64 copy).
* :func:`meter_reserve_w` with ``elementwise=True`` (one call of the facility model on
  both operating points) equals the two-call path exactly; ``_broadcast_pair`` gives
  ``np.broadcast_arrays``'s values.
* The control's clip (``minimum(maximum(x, lo), hi)``) equals ``np.clip`` exactly for the
  positive limits it is used with, NaN and infinities in ``x`` included.

All comparisons are exact (bit for bit) unless stated.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.control import island_table
from twin.control.island_table import (
    IslandTableError,
    decode_table,
    encode_decode_table,
    encode_table,
)
from twin.control.tier3_selector import _broadcast_pair, meter_reserve_w
from twin.facility.cooling_plant import PaperEq4Params
from twin.physics.cooling import facility_power_w

RNG = np.random.default_rng(2024)


def _same_array(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()
    assert a.flags.c_contiguous == b.flags.c_contiguous and a.flags.writeable == b.flags.writeable


def _same_table(a, b) -> None:
    assert a.version == b.version and a.kinds == b.kinds and a.payload_crc32 == b.payload_crc32
    _same_array(a.levels_hz, b.levels_hz)
    _same_array(a.cohort_ids, b.cohort_ids)
    _same_array(a.caps_w, b.caps_w)
    assert repr(a.created_s) == repr(b.created_s) and repr(a.expires_s) == repr(b.expires_s)
    assert type(a.meta) is type(b.meta) and dict(a.meta) == dict(b.meta)
    assert [(k, type(v)) for k, v in a.meta.items()] == [(k, type(v)) for k, v in b.meta.items()]


def _random_table_args(rng):
    n_lv, n_co = int(rng.integers(1, 5)), int(rng.integers(1, 40))
    has_release = n_lv > 1 and rng.random() < 0.6
    n_trig = n_lv - int(has_release)
    levels = sorted(rng.choice(np.arange(49_000, 49_900), n_trig, replace=False).tolist(), reverse=True)
    levels = [m / 1000.0 for m in levels] + ([49.95] if has_release else [])
    kinds = ("trigger",) * n_trig + (("release",) if has_release else ())
    caps = np.sort(rng.uniform(50.0, 400.0, (n_lv, n_co)), axis=0)[::-1]
    form = rng.integers(4)
    if form == 1:
        caps = np.asfortranarray(caps)         # column-major input
    elif form == 2:
        caps = caps.astype(np.float32)         # already float32
    elif form == 3:
        caps = caps.tolist()                   # nested lists
    kw = {"kinds": kinds if (has_release or rng.random() < 0.5) else None}
    if rng.random() < 0.5:
        kw["cohort_ids"] = rng.integers(0, 2**32, n_co, dtype=np.uint64)
    if rng.random() < 0.5:
        kw["expires_s"] = 1.7e9 + float(rng.uniform(0.0, 7200.0))
    meta = rng.choice([None, {}, {"writer": "gridtwin", "sim_time_s": float(rng.uniform(-1e5, 1e5)), "r": 0.2},
                       {"a": [1, 2.5, None, True], "b": (1, "x"), "c": {"d": -0.0}, "e": 3, "f": 1e-310},
                       {7: "int keys", 8: [1.5]}])
    return levels, caps, 1.7e9 + float(rng.uniform(-1.0, 1.0)), meta, kw


def test_encode_decode_equals_decode_of_encode_on_random_tables():
    for _ in range(400):
        levels, caps, created, meta, kw = _random_table_args(RNG)
        data, table = encode_decode_table(levels, caps, created, meta, **kw)
        assert data == encode_table(levels, caps, created, meta, **kw)
        _same_table(table, decode_table(data))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
@pytest.mark.parametrize("change", [
    {"caps_w": np.array([[200.0, np.nan]])},
    {"caps_w": np.array([[200.0, -1.0]])},
    {"caps_w": np.array([[200.0, 1e300]])},                     # inf as float32
    {"caps_w": np.array([200.0, 250.0])},                       # 1-D
    {"levels_hz": (49.7, 49.8), "caps_w": np.full((2, 2), 200.0)},
    {"levels_hz": (49.7005,)},
    {"levels_hz": (-5.0,)},                                     # numpy's OverflowError, as before
    {"kinds": ("release",)},
    {"kinds": ("trigger", "trigger")},
    {"cohort_ids": [0, -1]},
    {"created_s": math.nan},
    {"expires_s": 1.0},
    {"meta": {"x": math.nan}},
    {"meta": {"x": object()}},
    {"_version": 2},                                            # bytes of another version: refused on reading
])
def test_encode_decode_raises_what_the_reference_raises(change):
    args = {"levels_hz": (49.7,), "caps_w": np.array([[200.0, 250.0]]), "created_s": 1.7e9,
            "meta": {"w": 1}, **change}

    def outcome(fn):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the exact type and text are compared
            return type(exc), str(exc), getattr(exc, "check", None)
        return None

    a = dict(args)
    ref = outcome(lambda: decode_table(encode_table(a.pop("levels_hz"), a.pop("caps_w"), a.pop("created_s"),
                                                    a.pop("meta"), **a)))
    b = dict(args)
    got = outcome(lambda: encode_decode_table(b.pop("levels_hz"), b.pop("caps_w"), b.pop("created_s"),
                                              b.pop("meta"), **b))
    assert ref is not None and got == ref


def test_content_rules_give_the_same_verdict_on_float32_and_float64_caps():
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e-45, 1e-40, 3.4e38], dtype=np.float32)
    verdicts = set()
    for _ in range(3000):
        n_lv, n_co = int(RNG.integers(1, 5)), int(RNG.integers(1, 7))
        mhz = np.sort(RNG.integers(49_000, 49_900, n_lv))[::-1].astype("<u4")
        kinds = np.zeros(n_lv, dtype="<u4")
        caps = np.sort(RNG.uniform(50.0, 400.0, (n_lv, n_co)), axis=0)[::-1].astype(np.float32)
        if RNG.random() < 0.3:
            caps[RNG.integers(n_lv), RNG.integers(n_co)] = RNG.choice(specials)
        if RNG.random() < 0.3 and n_lv > 1:  # a rise with depth, sometimes by one float32 ulp
            i, j = int(RNG.integers(1, n_lv)), int(RNG.integers(n_co))
            caps[i, j] = np.nextafter(caps[i - 1, j], np.float32(np.inf)) if RNG.random() < 0.5 else caps[i - 1, j]
        out = []
        for c in (caps, caps.astype(np.float64)):
            try:
                island_table._validate(mhz, kinds, c)
                out.append(None)
            except IslandTableError as exc:
                out.append(str(exc))
        assert out[0] == out[1], caps
        verdicts.add(out[0].split(": ")[2][:4] if out[0] else "ok")
    assert {"ok", "cap[", "coho"} <= verdicts


def _eq4(p_fix_w: float):
    kw = PaperEq4Params().__dict__
    return lambda it_w: facility_power_w(p_fix_w + np.asarray(it_w, dtype=float), 2.0e6, 21.0, 16.0,
                                         **kw)["facility_power_w"]


def test_meter_reserve_in_one_call_equals_two_calls():
    for _ in range(300):
        p_max = float(RNG.uniform(1e3, 2e6))
        fn = None if RNG.random() < 0.2 else _eq4(float(RNG.uniform(0.0, 1e6)))
        shape_u, shape_r = [(), (int(RNG.integers(1, 80)),), (3, 1)][RNG.integers(3)], (int(RNG.integers(1, 80)),)
        if RNG.random() < 0.3:
            shape_u, shape_r = shape_r, shape_u
        if len(shape_u) == 1 and len(shape_r) == 1:
            shape_r = shape_u
        u = RNG.uniform(0.4, 1.0, shape_u) if shape_u else float(RNG.uniform(0.4, 1.0))
        r = np.round(RNG.uniform(0.0, 0.4, shape_r), 2) if shape_r else float(RNG.uniform(0.0, 0.4))
        ref = meter_reserve_w(p_max, u, r, fn)
        got = meter_reserve_w(p_max, u, r, fn, elementwise=True)
        assert type(got) is type(ref) and np.shape(got) == np.shape(ref)
        assert np.asarray(got).tobytes() == np.asarray(ref).tobytes()
    # scalars on both sides: the one-call path does not apply, the result is the same scalar
    assert meter_reserve_w(1e6, 0.9, 0.2, _eq4(1e5), elementwise=True) == meter_reserve_w(1e6, 0.9, 0.2, _eq4(1e5))


def test_broadcast_pair_gives_the_broadcast_values():
    shapes = [(), (1,), (5,), (1, 5), (4, 1), (4, 5), (0,), (1, 0), (3, 0)]
    for sa in shapes:
        for sb in shapes:
            a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)
            a.flat[:1] = -0.0
            try:
                ref = np.broadcast_arrays(a, b)
            except ValueError:
                with pytest.raises(ValueError):
                    _broadcast_pair(a, b)
                continue
            got = _broadcast_pair(a, b)
            for x, y in zip(got, ref):
                assert x.shape == y.shape and x.dtype == y.dtype
                assert np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes()


def test_minimum_of_maximum_is_np_clip_for_positive_limits():
    x = np.r_[RNG.uniform(-100.0, 500.0, 5000), np.nan, np.inf, -np.inf, 0.0, -0.0, 150.0, 300.0,
              np.nextafter(150.0, 0.0), np.nextafter(300.0, 1e9)]
    lo = np.r_[np.full(x.size - 4, 150.0), 1e-300, 5e-324, 150.0, 150.0]
    hi = np.r_[RNG.uniform(150.0, 300.0, x.size - 4), 1e-300, 300.0, 150.0, 300.0]
    assert np.minimum(np.maximum(x, lo), hi).tobytes() == np.clip(x, lo, hi).tobytes()
