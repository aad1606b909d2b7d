"""Ahead-of-time compiled kernels: the twin's hot loops as a native module built once.

Four kernels run in every second of a controlled run: Tier 2's period and its block form
(:func:`twin.control.tier2_ar._power_tick_soa`, ``_power_block_soa``), Tier 1's tick
(:func:`twin.control.tier1_pid._tick_soa`) and the fleet's non-settled advance
(:func:`twin.facility.gpu_fleet._advance_soa`), with numpy's pairwise sum and the fleet's
flush of many lazy intervals (``_flush_soa``). Compiled by
numba's JIT they cost every run numba's start-up (importing numba and loading its disk
cache: ~0.35 s of a 2 s day, docs/performance.md "Round 7"). :func:`build` compiles the
same Python functions once, ahead of time, with ``numba.pycc`` into
``twin/_aot_kernels*.so``, a CPython extension that imports in well under a millisecond
without numba. The code is numba's own for the same functions (IEEE arithmetic, no fast-math,
no contraction), so the results are the JIT's and the numpy paths' bit for bit
(``tests/test_aot.py``).

``make`` builds it (``python -m twin.aot build``) after installing the package and again
whenever a kernel's source file changes. A build is used only if it is *fresh*: the stamp
beside it (``_aot_kernels.json``) must name the same kernel sources (SHA-256 of the files
in :data:`SOURCES`), Python, numpy and CPU (the code is compiled for the building machine's
instruction set, AVX-512 where it has it). Otherwise, or without a build, or with the environment variable
``GRIDTWIN_AOT=0``, the callers use numba's JIT as before (the same results, slower start);
:func:`status` says which and why.

pycc's wrappers do not check their arguments' types (a wrong dtype or a strided array
where a contiguous one is compiled reads the wrong memory), so every array reaching a
kernel is checked first against :data:`SPECS` (:func:`args_fit`) or comes from arrays that
were (the callers keep identity checks, as they did for the JIT's overloads).

numba.pycc is pending deprecation in numba (a replacement is announced, not released);
while it exists, this module builds with it; without it, :func:`build` raises and the runs
use the JIT.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["SOURCES", "SPECS", "args_fit", "build", "kernels", "load_from", "main", "source_key", "status"]

MODULE = "_aot_kernels"          # twin._aot_kernels
STAMP = MODULE + ".json"
# Files whose text the kernels are compiled from (their callees included); any change to
# one makes a build stale.
SOURCES = ("control/tier2_ar.py", "control/tier1_pid.py", "facility/gpu_fleet.py", "aot.py")

# Parameter types: ("f8"|"i8"|"b1", ndim, layout, writable) for arrays, "f8"|"i8"|"b1" for
# scalars. Layout "C": C-contiguous; "A": any strides.
_C = "C"
_A = "A"


def _arr(dtype: str, ndim: int = 1, layout: str = _C, writable: bool = True) -> tuple:
    return (dtype, ndim, layout, writable)


_T2 = [_arr("f8", 2), _arr("f8", 2), _arr("f8", 2), _arr("i8"), "i8", "f8", "f8", _arr("f8"), "b1", _arr("i8", 2),
       _arr("f8")]                                              # theta .. p0
_RO = _arr("f8", 1, _A, False)
SPECS: dict[str, tuple[str, tuple[str, str], tuple, tuple]] = {
    # name: (return type, (module, function), parameters)
    "power_tick": ("i8", ("twin.control.tier2_ar", "_power_tick_soa"), tuple(
        _T2 + [_arr("f8"), _arr("f8"), _arr("f8"), "f8", _arr("f8", 1, _C, False), _arr("f8", 1, _C, False),
               _arr("f8", 1, _C, False), _arr("b1"), _arr("f8"), _arr("f8"), "b1", _arr("f8")])),
    "power_block": ("UniTuple(i8, 2)", ("twin.control.tier2_ar", "_power_block_soa"), tuple(
        _T2 + [_arr("f8"), _arr("f8"), _arr("f8", 1, _C, False), _arr("f8", 1, _C, False), _arr("f8"), _arr("b1"),
               _arr("f8"), "f8", _arr("f8", 1, _C, False), _arr("f8", 1, _C, False), _arr("f8", 1, _C, False), _arr("b1"),
               _arr("f8"), _arr("f8"), _arr("b1"), _arr("f8", 2)])),
    "tier1_tick": ("UniTuple(i8, 3)", ("twin.control.tier1_pid", "_tick_soa"), (
        _RO, _arr("b1", 1, _A, False), "b1", _RO, _RO, _RO, _RO, _RO, _RO, _RO, _RO, _RO, _RO, "b1",
        _arr("f8", 1, _A), "b1", _arr("f8", 1, _A), _arr("f8", 1, _A), _arr("i8", 1, _A), "i8",
        _arr("b1", 1, _A), _RO, _arr("f8", 2))),
    "fleet_advance": ("i8", ("twin.facility.gpu_fleet", "_advance_soa"), (
        _arr("f8"), _arr("f8"), _arr("f8"), _arr("f8"), _arr("f8"), _arr("f8", 2), _arr("f8", 2), _arr("b1"),
        _arr("i8"), _arr("f8"), _arr("f8"), "f8", "f8")),
    "fleet_flush": ("i8", ("twin.facility.gpu_fleet", "_flush_soa"), (_arr("f8", 2), _arr("f8", 2, _C, False),
                                                                      _arr("f8"))),
    "pairwise_sum": ("f8", ("twin.control.tier2_ar", "_pairwise_sum"), (_arr("f8"),)),
}

_DTYPES = {"f8": np.dtype(np.float64), "i8": np.dtype(np.int64), "b1": np.dtype(np.bool_)}
_SCALARS = {"f8": (float, np.floating, int, np.integer), "i8": (int, np.integer), "b1": (bool, np.bool_)}


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def _cpu_id() -> str:
    """The instruction-set identity the build is tied to: machine and (on Linux) the CPU's
    flags (the first ``flags`` line of /proc/cpuinfo), hashed."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = " ".join(sorted(line.split(":", 1)[1].split()))
                    break
    except OSError:
        pass
    return platform.machine() + ":" + hashlib.sha256(flags.encode()).hexdigest()[:16]


def source_key(root: Path | None = None) -> dict:
    """What a build must match to be used: SHA-256 of the kernel sources, Python's and
    numpy's versions, the CPU identity (:func:`_cpu_id`)."""
    root = root or _package_dir()
    h = hashlib.sha256()
    for rel in SOURCES:
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return {"sources_sha256": h.hexdigest(), "python": platform.python_version(), "numpy": np.__version__,
            "cpu": _cpu_id()}


def _numba_type(spec, types):
    if isinstance(spec, str):
        return {"f8": types.float64, "i8": types.int64, "b1": types.boolean}[spec]
    dtype, ndim, layout, writable = spec
    return types.Array(_numba_type(dtype, types), ndim, layout, readonly=not writable)


def _signature(name: str, types):
    ret, _, params = SPECS[name]
    i8 = types.int64
    rt = {"i8": i8, "f8": types.float64, "UniTuple(i8, 2)": types.UniTuple(i8, 2),
          "UniTuple(i8, 3)": types.UniTuple(i8, 3)}[ret]
    return rt(*(_numba_type(p, types) for p in params))


def build(out_dir: Path | None = None, *, verbose: bool = False) -> Path:
    """Compile the kernels of :data:`SPECS` into ``out_dir`` (default: this package's
    directory) as :data:`MODULE`, for this machine's CPU, and write the stamp; returns the
    module's path. Needs numba (with ``numba.pycc``), setuptools and a C compiler; raises
    RuntimeError naming what failed. Takes ~10-20 s."""
    import warnings

    out_dir = Path(out_dir) if out_dir is not None else _package_dir()
    stamp = out_dir / STAMP
    if stamp.exists():
        stamp.unlink()             # a half-finished build is never left looking fresh
    key = source_key()             # the sources as compiled (an edit during the build: stale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # pycc's pending-deprecation notice
        try:
            from numba import types
            from numba.pycc import CC
        except ImportError as exc:
            raise RuntimeError(f"cannot build the AOT kernels: numba.pycc is not available ({exc})") from exc
        from twin.control import tier2_ar

        tier2_ar._numba_kernels()  # the callees as compiled globals, as in the JIT's kernels
        cc = CC(MODULE)
        cc.output_dir = str(out_dir)
        cc.target_cpu = "host"
        cc.verbose = verbose
        for name, (_, (mod, fn), _) in SPECS.items():
            cc.export(name, _signature(name, types))(getattr(importlib.import_module(mod), fn))
        t0 = time.perf_counter()
        try:
            cc.compile()
        except Exception as exc:   # compiler missing, link failure ...: the runs use the JIT
            raise RuntimeError(f"cannot build the AOT kernels: {type(exc).__name__}: {exc}") from exc
    built = sorted(out_dir.glob(MODULE + ".*"), key=lambda p: p.stat().st_mtime)
    built = [p for p in built if p.suffix in (".so", ".pyd")]
    if not built:
        raise RuntimeError(f"cannot build the AOT kernels: no {MODULE} extension appeared in {out_dir}")
    info = dict(key, numba=_numba_version(), built_s=round(time.perf_counter() - t0, 1),
                module=built[-1].name)
    stamp.write_text(json.dumps(info, indent=1) + "\n")
    return built[-1]


def _numba_version() -> str:
    try:
        import numba

        return numba.__version__
    except ImportError:
        return "none"


def load_from(where: Path, module_name: str = f"twin.{MODULE}"):
    """(module or None, reason): the build in ``where`` if its stamp matches
    :func:`source_key`; the module is imported from its file under ``module_name``."""
    where = Path(where)
    stamp = where / STAMP
    if not stamp.exists():
        return None, f"not built ({stamp} missing: run `make kernels` or `python -m twin.aot build`)"
    try:
        info = json.loads(stamp.read_text())
        path = where / info["module"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{stamp}: unreadable stamp ({type(exc).__name__}: {exc})"
    want = source_key()
    stale = [k for k, v in want.items() if info.get(k) != v]
    if stale:
        return None, (f"stale build ({', '.join(stale)} changed since it was built): run `make kernels` or "
                      f"`python -m twin.aot build`")
    if module_name in sys.modules:
        mod = sys.modules[module_name]
    else:
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None:
                raise ImportError(f"{path}: not an extension module")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        except (ImportError, OSError) as exc:
            return None, f"the built module does not import ({exc})"
    missing = [n for n in SPECS if not hasattr(mod, n)]
    if missing:
        return None, f"the built module lacks {missing}"
    sys.modules[module_name] = mod
    return mod, f"built {path.name} (numba {info.get('numba')})"


@functools.cache
def _load():
    if os.environ.get("GRIDTWIN_AOT") == "0":
        return None, "disabled by GRIDTWIN_AOT=0"
    return load_from(_package_dir())


def kernels():
    """The built module of AOT kernels, or None (not built, stale, or it fails to import)."""
    return _load()[0]


def status() -> str:
    """``"aot: ..."`` when the AOT kernels are in use, else ``"jit: <why not aot>"``."""
    mod, why = _load()
    return ("aot: " if mod is not None else "jit: ") + why


@functools.cache
def _checks(name: str) -> tuple:
    """Per parameter of kernel ``name``: (scalar kinds, None, ...) or (None, dtype, ndim,
    contiguous?, writable?)."""
    out = []
    for p in SPECS[name][2]:
        if isinstance(p, str):
            out.append((_SCALARS[p], None, 0, False, False))
        else:
            dtype, ndim, layout, writable = p
            out.append((None, _DTYPES[dtype], ndim, layout == _C, writable))
    return tuple(out)


def args_fit(name: str, args) -> bool:
    """Whether ``args`` match kernel ``name``'s compiled parameter types exactly (numpy
    arrays of the dtype, dimensions, contiguity and writability compiled, aligned; scalars
    of the kind). A call with arguments that do not fit must not reach the kernel."""
    checks = _checks(name)
    if len(args) != len(checks):
        return False
    nd = np.ndarray
    for a, (kinds, dtype, ndim, contiguous, writable) in zip(args, checks):
        if kinds is not None:
            if type(a) is nd or not isinstance(a, kinds):
                return False
        elif type(a) is not nd or a.dtype is not dtype or a.ndim != ndim:
            return False                # (builtin native dtypes are singletons: `is` suffices)
        else:
            f = a.flags
            if not f.aligned or (contiguous and not f.c_contiguous) or (writable and not f.writeable):
                return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m twin.aot",
        description="Build or inspect the ahead-of-time compiled kernels (Tier 2, Tier 1, fleet advance). "
                    "Runs use them when a fresh build exists, numba's JIT otherwise; the results are the same.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="compile the kernels for this machine into the twin package (~10-20 s)")
    b.add_argument("--out", type=Path, default=None, help="directory to build into (default: the twin package)")
    b.add_argument("--verbose", action="store_true", help="show the compiler's commands")
    sub.add_parser("status", help="say whether runs use the AOT kernels, and why not")
    ns = parser.parse_args(argv)
    if ns.cmd == "status":
        print(status())
        return 0
    t0 = time.perf_counter()
    try:
        path = build(ns.out, verbose=ns.verbose)
    except RuntimeError as exc:
        print(f"twin.aot: {exc}", file=sys.stderr)
        return 1
    print(f"twin.aot: built {path} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
