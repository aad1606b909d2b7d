"""The simulation clock: a SimPy environment that can tell when the next event other than
the base tick's own is due, so that the engine can close stretches of base ticks between
events in one go (block stepping, docs/performance.md).

SimPy orders events by (time, priority, schedule order); this environment keeps, beside
SimPy's own queue, a heap of the times of every scheduled event that is not an
:class:`OwnTimeout` (the base tick's and Tier 2's periodic timeouts). Processed events are
dropped lazily. Only public SimPy API is used (``Environment.schedule`` is overridden, and
``Event.processed`` read).
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from itertools import count

import simpy
from simpy.events import NORMAL


class OwnTimeout(simpy.Timeout):
    """A periodic timeout of the base tick or of Tier 2: not a "foreign" event, so it does
    not end a block (:meth:`BlockEnvironment.next_foreign_s`)."""


class BlockEnvironment(simpy.Environment):
    """:class:`simpy.Environment` that also tracks the next foreign event's time."""

    def __init__(self, initial_time: float = 0.0):
        super().__init__(initial_time)
        self._foreign: list[tuple[float, int, simpy.Event]] = []   # (time, seq, event) heap
        self._seq = count()

    def schedule(self, event: simpy.Event, priority: int = NORMAL, delay: float = 0) -> None:
        super().schedule(event, priority, delay)
        if type(event) is not OwnTimeout:
            heappush(self._foreign, (self.now + delay, next(self._seq), event))

    def own_timeout(self, delay: float) -> OwnTimeout:
        """A timeout that does not count as a foreign event."""
        return OwnTimeout(self, delay)

    def next_foreign_s(self) -> float:
        """Time of the earliest scheduled, not yet processed foreign event [s] (inf if none)."""
        h = self._foreign
        while h and h[0][2].processed:
            heappop(h)
        return h[0][0] if h else math.inf
