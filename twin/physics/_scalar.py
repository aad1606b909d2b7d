"""Helpers of the scalar fast paths in the per-tick physics (same results as numpy on floats).

The physics functions take scalars or arrays; per-tick calls pass plain floats, for which
numpy's 0-d machinery costs more than the arithmetic. Where every argument is a number,
a function runs the same operations in the same order on Python floats; these helpers
give them numpy's NaN semantics.
"""

from __future__ import annotations

import math


def scalars(*args) -> bool:
    """True when every argument is a float or an int (numpy float64 included)."""
    for a in args:
        if a.__class__ is not float and not isinstance(a, (float, int)):
            return False
    return True


def fmax(a, b) -> float:
    """``np.maximum`` of two scalars: NaN if either is NaN (else ``max(a, b)``)."""
    a, b = float(a), float(b)
    if b > a:
        return b
    if a >= b:
        return a
    return math.nan  # a comparison with NaN is false both ways


def fmin(a, b) -> float:
    """``np.minimum`` of two scalars: NaN if either is NaN (else ``min(a, b)``)."""
    a, b = float(a), float(b)
    if b < a:
        return b
    if a <= b:
        return a
    return math.nan
