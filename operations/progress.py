"""Human progress on stderr: one line per step, and a line for every long wait."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Writes timestamped progress lines; safe to call from the snapshot thread."""

    def __init__(self, stream: TextIO | None = None, now=time.monotonic):
        self._stream = stream or sys.stderr
        self._now = now
        self._start = now()
        self._lock = threading.Lock()

    def say(self, message: str) -> None:
        elapsed = self._now() - self._start
        minutes, seconds = divmod(int(elapsed), 60)
        with self._lock:
            self._stream.write(f"[{minutes:02d}:{seconds:02d}] {message}\n")
            self._stream.flush()

    def waiting(self, what: str, elapsed: float, detail: str = "") -> None:
        suffix = f" ({detail})" if detail else ""
        self.say(f"waiting for {what}: {elapsed:.0f}s so far{suffix}")


class SilentProgress(Progress):
    """Collects lines in memory (tests and the benchmark)."""

    def __init__(self) -> None:
        super().__init__(stream=sys.stderr)
        self.lines: list[str] = []

    def say(self, message: str) -> None:
        with self._lock:
            self.lines.append(message)
