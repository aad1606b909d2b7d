"""The paper table: run experiments, judge each row, write ``paper_table.md`` / ``.json``.

A row compares a reference value (the paper's number, or a measured one from the
paper's released data: ``reference`` says which) with the twin's value. A row with a
tolerance passes when ``|twin - paper| <= tol_abs`` or ``|twin - paper| <= tol_rel *
|paper|`` (:func:`make_row`; rows built otherwise carry their own ``pass``); a row whose
``pass`` is None is "report only" and never fails. An experiment that
raises becomes one failing error row. ``reproduce`` returns exit status 0 when every
row with a tolerance passes, else 1; usage problems raise :class:`ReproduceUsageError`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "REPORT_ONLY",
    "ROW_KEYS",
    "ReproduceUsageError",
    "ReproduceResult",
    "make_row",
    "error_row",
    "normalise_row",
    "select_experiments",
    "run_experiments",
    "format_markdown",
    "write_paper_table",
    "reproduce",
]

REPORT_ONLY = "report only"
ROW_KEYS = ("experiment", "metric", "unit", "paper_value", "twin_value", "tolerance", "pass", "reference", "note")
MD_NAME, JSON_NAME = "paper_table.md", "paper_table.json"


class ReproduceUsageError(ValueError):
    """An unknown experiment, or a data folder that is not there."""


def _num(x):
    """A JSON-safe number: floats (numpy included) as float, NaN/inf as None, others unchanged."""
    if x is None or isinstance(x, (bool, str)):
        return x
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    return f if math.isfinite(f) else None


def make_row(experiment: str, metric: str, paper_value, twin_value, *, unit: str = "",
             tol_abs: float | None = None, tol_rel: float | None = None, reference: str = "",
             note: str = "") -> dict:
    """One table row; the verdict is computed here.

    Parameters
    ----------
    paper_value, twin_value : float or None
        The reference and the twin's value, in ``unit``. A missing twin value fails a
        row with a tolerance.
    tol_abs : float, optional
        Pass when ``|twin - paper| <= tol_abs`` [unit].
    tol_rel : float, optional
        Pass when ``|twin - paper| <= tol_rel * |paper|`` [-] (at most one of the two).
        Neither: report only (``pass`` is None).
    reference : str
        Where ``paper_value`` comes from ("paper §5.1", "E2 data, measured", ...).
    """
    if tol_abs is not None and tol_rel is not None:
        raise ValueError("make_row: give tol_abs or tol_rel, not both")
    p, t = _num(paper_value), _num(twin_value)
    if tol_abs is None and tol_rel is None:
        tolerance, ok = REPORT_ONLY, None
    else:
        if tol_abs is not None:
            tolerance, limit = f"±{tol_abs:g} {unit}".strip(), tol_abs
        else:
            tolerance, limit = f"±{tol_rel * 100:g} %", None if p is None else tol_rel * abs(p)
        ok = bool(isinstance(p, float) and isinstance(t, float) and limit is not None
                  and abs(t - p) <= limit + 1e-12 * max(abs(p), 1.0))
    return {"experiment": experiment, "metric": metric, "unit": unit, "paper_value": p, "twin_value": t,
            "tolerance": tolerance, "pass": ok, "reference": reference, "note": note}


def error_row(experiment: str, message: str) -> dict:
    """A failing row for an experiment that could not run."""
    return {"experiment": experiment, "metric": "error: experiment did not run", "unit": "", "paper_value": None,
            "twin_value": None, "tolerance": "(must run)", "pass": False, "reference": "", "note": message}


def normalise_row(row: Mapping, experiment: str) -> dict:
    """A row with exactly :data:`ROW_KEYS`.

    Keys are matched ignoring case, spaces and dashes; ``paper`` and ``twin`` stand for
    ``paper_value`` and ``twin_value``. ``pass`` None means report only (the tolerance
    text, if any, is kept for display); a row with a tolerance and no ``pass`` key at all
    fails, with a note saying so.
    """
    r = {str(k).strip().lower().replace(" ", "_").replace("-", "_"): v for k, v in dict(row).items()}
    for alias, key in (("paper", "paper_value"), ("twin", "twin_value")):
        if key not in r and alias in r:
            r[key] = r[alias]
    out = {k: r.get(k, "") for k in ROW_KEYS}
    out["experiment"] = str(out["experiment"] or experiment)
    out["paper_value"], out["twin_value"] = _num(r.get("paper_value")), _num(r.get("twin_value"))
    tol = r.get("tolerance")
    no_tol = tol is None or (isinstance(tol, str) and tol.strip().lower() in ("", "report", REPORT_ONLY))
    out["tolerance"] = REPORT_ONLY if no_tol else str(tol)
    verdict = r.get("pass")
    if isinstance(verdict, (bool, np.bool_)):
        out["pass"] = bool(verdict)
    elif verdict is None and ("pass" in r or no_tol):
        out["pass"] = None
    else:
        out["pass"] = False
        out["note"] = (f"{out['note']}; " if out["note"] else "") + f"row has a tolerance but pass = {verdict!r}"
    if no_tol and out["pass"] is not None:
        out["tolerance"] = "(none given)"
    for k in ("metric", "unit", "reference", "note"):
        out[k] = "" if out[k] is None else str(out[k])
    return out


def select_experiments(only: str | Sequence[str] | None, registry: Mapping) -> list[str]:
    """Experiment names from ``--only`` ("E2,E3", case-insensitive), in the order given; all if None."""
    if only is None:
        return list(registry)
    names = [s.strip() for s in (only.split(",") if isinstance(only, str) else only) if s.strip()]
    if not names:
        raise ReproduceUsageError(f"--only names no experiment; known: {', '.join(registry)}")
    by_upper = {k.upper(): k for k in registry}
    unknown = [n for n in names if n.upper() not in by_upper]
    if unknown:
        raise ReproduceUsageError(f"unknown experiment {', '.join(unknown)}; known: {', '.join(registry)}")
    return list(dict.fromkeys(by_upper[n.upper()] for n in names))


def run_experiments(names: Sequence[str], data_dir: Path, seed: int, registry: Mapping) -> list[dict]:
    """Rows of each experiment in turn; an experiment that raises gives one error row."""
    rows: list[dict] = []
    for name in names:
        try:
            got = registry[name].run(data_dir, seed)
            if not got:
                raise RuntimeError("returned no rows")
            rows.extend(normalise_row(r, name) for r in got)
        except Exception as exc:  # noqa: BLE001 - reported as a failing row, never swallowed
            rows.append(error_row(name, f"{type(exc).__name__}: {exc}"))
    return rows


def _fmt(v, unit: str) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        s = f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
        return f"{s} {unit}".strip()
    return str(v)


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def format_markdown(rows: Sequence[dict], context: Mapping) -> str:
    """The table as Markdown: a context list, the table, and numbered notes."""
    verdict = {True: "pass", False: "**FAIL**", None: "—"}
    lines = ["# GridTwin vs the GridPilot paper (`gridtwin reproduce`)", ""]
    lines += [f"- {k}: {v}" for k, v in context.items()]
    lines += ["", "| # | experiment | metric | paper value | twin value | tolerance | pass |",
              "|---|---|---|---|---|---|---|"]
    notes = []
    for i, r in enumerate(rows, 1):
        ref = f" ({r['reference']})" if r["reference"] else ""
        lines.append(f"| {i} | {_cell(r['experiment'])} | {_cell(r['metric'])} | "
                     f"{_cell(_fmt(r['paper_value'], r['unit']) + ref)} | {_cell(_fmt(r['twin_value'], r['unit']))} | "
                     f"{_cell(r['tolerance'])} | {verdict[r['pass']]} |")
        if r["note"]:
            notes.append(f"{i}. {r['note']}")
    n_tol = sum(r["pass"] is not None for r in rows)
    n_fail = sum(r["pass"] is False for r in rows)
    lines += ["", (f"{n_tol - n_fail} of {n_tol} rows with a tolerance pass; "
                   f"{len(rows) - n_tol} rows are report only.")]
    if notes:
        lines += ["", "Notes (by row):", ""] + notes
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_paper_table(rows: Sequence[dict], out_dir: Path, context: Mapping) -> tuple[Path, Path]:
    """Write ``out_dir/paper_table.md`` and ``.json`` (each written whole, then renamed into place)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / MD_NAME, out_dir / JSON_NAME
    doc = {"schema_version": 1, **dict(context),
           "all_passed": all(r["pass"] is not False for r in rows), "rows": list(rows)}
    _write_atomic(js, json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    _write_atomic(md, format_markdown(rows, context))
    return md, js


@dataclass(frozen=True)
class ReproduceResult:
    rows: list
    markdown: str
    md_path: Path
    json_path: Path

    @property
    def all_passed(self) -> bool:
        """True when no row with a tolerance failed (report-only rows never fail)."""
        return all(r["pass"] is not False for r in self.rows)

    @property
    def exit_code(self) -> int:
        return 0 if self.all_passed else 1


def reproduce(only, data_dir: str | os.PathLike, out_dir: str | os.PathLike, seed: int = 0,
              registry: Mapping | None = None) -> ReproduceResult:
    """Run the selected experiments and write the table.

    Parameters
    ----------
    only : str, sequence of str or None
        Experiments to run ("E2,E3"); None runs all of ``registry``.
    data_dir : path-like
        The V100 telemetry folder, for the experiments that read data.
    out_dir : path-like
        Where ``paper_table.md`` and ``paper_table.json`` go (created if needed).
    seed : int
        Seed for the experiments that simulate.
    registry : mapping, optional
        Name -> :class:`twin.reproduce.Experiment` (or anything with ``needs_data`` and
        ``run(data_dir, seed)``); default :data:`twin.reproduce.EXPERIMENTS`.

    Raises
    ------
    ReproduceUsageError
        Unknown experiment, or ``data_dir`` missing while a selected experiment needs it.
    """
    if registry is None:
        from twin.reproduce import EXPERIMENTS as registry
    names = select_experiments(only, registry)
    data_dir = Path(data_dir)
    needing = [n for n in names if getattr(registry[n], "needs_data", False)]
    if needing and not data_dir.is_dir():
        raise ReproduceUsageError(f"data folder {data_dir} not found ({', '.join(needing)} read it); expected "
                                  "the V100 telemetry folder, e.g. ../shared/data/v100_telemetry (--data DIR)")
    rows = run_experiments(names, data_dir, seed, registry)
    context = {"experiments": ", ".join(names), "data": str(data_dir), "seed": int(seed)}
    md, js = write_paper_table(rows, Path(out_dir), context)
    return ReproduceResult(rows, md.read_text(encoding="utf-8"), md, js)
