"""Reproduce the paper's experiments with the twin: ``gridtwin reproduce``.

:data:`EXPERIMENTS` maps an experiment name to an :class:`Experiment`, whose row
function is imported only when it runs, so that a missing or broken module gives an
error row in the table (and exit 1), never an ImportError when this package is
imported. Each row function returns rows built by :func:`twin.reproduce.table.make_row`
(keys: experiment, metric, unit, paper_value, twin_value, tolerance, pass, reference,
note); :func:`twin.reproduce.table.reproduce` runs them and writes ``paper_table.md`` and
``paper_table.json``.

* E2, inner-loop step response (seed 004 §5.1): :func:`twin.reproduce.e2.e2_rows` ``(data_dir)``;
* E3, AR(4) predictor accuracy: ``twin.reproduce.e3.e3_rows(data_dir)``;
* E4, closed-loop demand following: ``twin.reproduce.e4.e4_rows(seed)``;
* DAY100, the 100-host day (§5.1, Fig. 4): ``twin.reproduce.day100.day100_rows(seed)``;
* E8, PUE-aware vs CI-only Tier 3 on six grids (§5.2): ``twin.reproduce.e8.e8_rows(data_dir)``
  (reads ``entsoe_ci_2025`` beside the V100 telemetry folder).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

__all__ = ["Experiment", "ExperimentUnavailable", "EXPERIMENTS"]


class ExperimentUnavailable(RuntimeError):
    """An experiment's row function cannot be imported."""


@dataclass(frozen=True)
class Experiment:
    """One reproducible experiment.

    Attributes
    ----------
    name : str
        Key in the table (``"E2"``).
    title : str
        What it reproduces.
    target : str or callable
        ``"module:function"`` imported when the experiment runs, or the function itself.
    argument : str
        What the function takes: ``"data_dir"`` (the V100 telemetry folder, must exist)
        or ``"seed"``.
    """

    name: str
    title: str
    target: str | Callable
    argument: str = "data_dir"

    def __post_init__(self):
        if self.argument not in ("data_dir", "seed"):
            raise ValueError(f"Experiment {self.name}: argument = {self.argument!r}; expected 'data_dir' or 'seed'")

    @property
    def needs_data(self) -> bool:
        return self.argument == "data_dir"

    def resolve(self) -> Callable:
        """The row function; :class:`ExperimentUnavailable` if it cannot be imported."""
        if callable(self.target):
            return self.target
        module, _, func = self.target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            raise ExperimentUnavailable(f"{self.name}: cannot import {module} ({exc})") from exc
        try:
            return getattr(mod, func)
        except AttributeError as exc:
            raise ExperimentUnavailable(f"{self.name}: {module} has no function {func!r}") from exc

    def run(self, data_dir: Path, seed: int) -> list[dict]:
        """The experiment's rows (its function called with ``data_dir`` or ``seed``)."""
        fn = self.resolve()
        return list(fn(Path(data_dir)) if self.needs_data else fn(int(seed)))


EXPERIMENTS = MappingProxyType({
    "E2": Experiment("E2", "inner-loop cap-step response (§5.1)", "twin.reproduce.e2:e2_rows", "data_dir"),
    "E3": Experiment("E3", "outer-loop AR(4) predictor accuracy (§5.1)", "twin.reproduce.e3:e3_rows", "data_dir"),
    "E4": Experiment("E4", "closed-loop demand following (§5.1)", "twin.reproduce.e4:e4_rows", "seed"),
    "DAY100": Experiment("DAY100", "the 24 h 100-host day on the German grid (§5.1, Fig. 4)",
                         "twin.reproduce.day100:day100_rows", "seed"),
    "E8": Experiment("E8", "PUE-aware vs CI-only Tier 3 on six grids (§5.2)", "twin.reproduce.e8:e8_rows",
                     "data_dir"),
})
