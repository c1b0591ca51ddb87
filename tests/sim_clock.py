"""Simulated time for tests: it moves only when something sleeps, and records each pause.

Deadlines and backoff schedules then run instantly and can be asserted exactly.
"""

from __future__ import annotations

from operations.retry import Clock


class SimulatedClock(Clock):
    def __init__(self, start: float = 0.0) -> None:
        self.t = start
        self.pauses: list[float] = []
        super().__init__(now=lambda: self.t, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.t += seconds

    def clock(self) -> Clock:
        return self
