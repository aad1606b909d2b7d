"""Cooling plant component: a thin class over :func:`twin.physics.cooling.facility_power_w`."""

from __future__ import annotations

from twin.physics.cooling import facility_power_w


class CoolingPlant:
    """Facility overhead (chiller, pumps, fans, misc) for a given IT load and weather.

    Parameters
    ----------
    design_it_power_w : float
        IT power at design load [W] (pump and fan design powers scale with it).
    eq4_params : dict
        Keyword parameters of :func:`twin.physics.cooling.facility_power_w`
        (``Cooling.eq4_params()`` of a scenario).

    The plant has no thermal state yet: it responds to the mean heat load of each
    tick (a documented choice, docs/architecture.md). Stateful plant models (chiller
    staging, storage) replace it behind the same :meth:`power` call.
    """

    def __init__(self, design_it_power_w: float, eq4_params: dict):
        if not design_it_power_w > 0:
            raise ValueError(f"design_it_power_w = {design_it_power_w!r}: expected > 0 W")
        self.design_it_power_w = float(design_it_power_w)
        self.params = dict(eq4_params)

    def power(self, it_power_w, dry_bulb_c, wet_bulb_c) -> dict:
        """Components of facility power [W] and the free-cooling fraction [-]."""
        return facility_power_w(it_power_w, self.design_it_power_w, dry_bulb_c, wet_bulb_c, **self.params)
