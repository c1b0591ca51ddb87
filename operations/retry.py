"""Retry and polling with exponential backoff, an overall deadline, and injectable time.

One helper instead of loops with counters and sleeps scattered through the code. The clock and
sleep are parameters so tests run instantly and the benchmark can use a simulated clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from operations.errors import DeadlineExceeded

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Pause schedule: first, then multiplied by factor, never above maximum."""

    first: float = 2.0
    factor: float = 1.6
    maximum: float = 30.0

    def pauses(self):
        pause = self.first
        while True:
            yield pause
            pause = min(pause * self.factor, self.maximum)


@dataclass
class Clock:
    """Wall-clock time and sleep, replaceable in tests."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def retry(
    action: Callable[[], T],
    *,
    is_transient: Callable[[BaseException], bool],
    attempts: int,
    backoff: Backoff = Backoff(),
    clock: Clock | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Run `action`; on an error that `is_transient` accepts, pause and try again.

    At most `attempts` runs in all; the last error is raised unchanged. Errors that are not
    transient are raised at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    clock = clock or Clock()
    pauses = backoff.pauses()
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - filtered by is_transient
            if attempt == attempts or not is_transient(error):
                raise
            pause = next(pauses)
            if on_retry:
                on_retry(attempt, error, pause)
            clock.sleep(pause)
    raise AssertionError("unreachable")


def poll(
    probe: Callable[[], T | None],
    *,
    what: str,
    deadline_seconds: float,
    backoff: Backoff = Backoff(),
    clock: Clock | None = None,
    on_wait: Callable[[float, float], None] | None = None,
) -> T:
    """Call `probe` until it returns something other than None, or the deadline passes.

    `on_wait(elapsed, pause)` is called before each pause so long waits can show progress.
    Raises DeadlineExceeded naming `what`.
    """
    clock = clock or Clock()
    start = clock.now()
    pauses = backoff.pauses()
    while True:
        result = probe()
        if result is not None:
            return result
        elapsed = clock.now() - start
        remaining = deadline_seconds - elapsed
        if remaining <= 0:
            raise DeadlineExceeded(
                f"gave up waiting for {what} after {elapsed:.0f}s",
                hint="check the resource in the console, then rerun with --resume",
            )
        pause = min(next(pauses), remaining)
        if on_wait:
            on_wait(elapsed, pause)
        clock.sleep(pause)
