"""The facility energy ledger: electricity in must equal heat out + storage + losses.

Every term is reported by the component that owns it, from its own model (IT heat by
the fleet, heat rejected by the cooling plant from its heat exchangers, stored energy
from each store's state, losses from each component's loss model). Nothing is
computed as a residual, so a leak in any one component shows up as an imbalance.

``rel_error = |in - out| / in`` over the run, where

* in  = electricity drawn at the meter (IT + cooling + misc + heat pump + battery charge)
        + electricity returned by the battery to the site bus (an internal source);
* out = heat rejected to ambient + heat delivered to the district network
        + change of stored energy (coolant loop, heat tank, battery)
        + losses (misc loads, battery conversion, tank standing losses, ...) +
        energy sent by the battery to the bus is already in "in".
"""

from __future__ import annotations

DEFAULT_TOLERANCE = 1e-3


class EnergyBalanceError(RuntimeError):
    """A run's energy did not balance."""


class EnergyLedger:
    """Accumulates named energy terms [J] on the in and out sides."""

    def __init__(self, tolerance: float = DEFAULT_TOLERANCE):
        if not 0 < tolerance < 1:
            raise ValueError(f"tolerance = {tolerance!r}: expected 0 < tolerance < 1")
        self.tolerance = tolerance
        self.inflows: dict[str, float] = {}
        self.outflows: dict[str, float] = {}

    def add_in(self, name: str, energy_j: float) -> None:
        self.inflows[name] = self.inflows.get(name, 0.0) + energy_j

    def add_out(self, name: str, energy_j: float) -> None:
        self.outflows[name] = self.outflows.get(name, 0.0) + energy_j

    def add_in_each(self, name: str, energies_j) -> None:
        """:meth:`add_in` for each of ``energies_j`` in turn (the same additions, in order)."""
        acc = self.inflows.get(name, 0.0)
        for e in energies_j:
            acc += e
        self.inflows[name] = acc

    def add_out_each(self, name: str, energies_j) -> None:
        """:meth:`add_out` for each of ``energies_j`` in turn (the same additions, in order)."""
        acc = self.outflows.get(name, 0.0)
        for e in energies_j:
            acc += e
        self.outflows[name] = acc

    @property
    def total_in_j(self) -> float:
        return sum(self.inflows.values())

    @property
    def total_out_j(self) -> float:
        return sum(self.outflows.values())

    def rel_error(self) -> float:
        """|in - out| / in (0 when nothing flowed)."""
        e_in = self.total_in_j
        return abs(e_in - self.total_out_j) / e_in if e_in > 0 else 0.0

    def check(self) -> float:
        """Return the relative error; raise :class:`EnergyBalanceError` above the tolerance."""
        err = self.rel_error()
        if not err <= self.tolerance:
            raise EnergyBalanceError(
                f"energy balance off by {err:.3%} (tolerance {self.tolerance:.3%}): "
                f"in {self.total_in_j / 3.6e6:.3f} kWh {self._fmt(self.inflows)}, "
                f"out {self.total_out_j / 3.6e6:.3f} kWh {self._fmt(self.outflows)}"
            )
        return err

    @staticmethod
    def _fmt(terms: dict[str, float]) -> str:
        return "(" + ", ".join(f"{k} {v / 3.6e6:.3f}" for k, v in terms.items()) + ")"

    def summary_kwh(self) -> dict[str, dict[str, float]]:
        return {"in": {k: v / 3.6e6 for k, v in self.inflows.items()},
                "out": {k: v / 3.6e6 for k, v in self.outflows.items()}}
