"""The operator's confirmation on the terminal, refused when there is no terminal to ask on."""

from __future__ import annotations

import sys

from operations.errors import UsageError


def confirm_on_terminal(question: str, *, needs: str, hint: str) -> bool:
    """True when the operator types `yes`; a UsageError naming `needs` without a terminal."""
    if not sys.stdin.isatty():
        raise UsageError(
            f"{needs} needs a confirmation and there is no terminal to ask on", hint=hint
        )
    return input(f"{question} [type 'yes']: ").strip().lower() == "yes"
