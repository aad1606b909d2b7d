"""Fitting twin models to measured data (``gridtwin calibrate ...``).

Each submodule reads its data through ``traces`` readers, fits the coefficients of one
``twin.physics`` model, reports how well they reproduce the data, and can rewrite the
packaged coefficient file the physics functions read. Nothing here runs during a
simulation.

* :mod:`twin.calibrate.gpu` -- V100 power vs cap and clock (E1), cap-step dynamics (E2),
  junction thermal RC (E1, checked on E2/E3).
"""


class CalibrationDataError(ValueError):
    """The data folder is missing or lacks what a fit needs (the CLI exits 2)."""


__all__ = ["CalibrationDataError"]
