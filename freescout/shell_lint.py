"""A check of shell text for bash-only constructs that dash runs wrongly or not at all (F1).

`dash -n` catches only syntax errors; `[[ ... ]]` under dash prints "not found" and takes the
false branch even under `set -eu`, and `[ a == b ]` is just false. So the rendered scripts are
also checked for these constructs, line by line, ignoring whole-line comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (name, pattern, why) — each pattern matches the construct where it is code, not a comment.
CONSTRUCTS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("double-bracket test", re.compile(r"(^|[\s;&|(!])\[\[(\s|$)"), "dash has no [[ ]]"),
    ("== inside [ ]", re.compile(r"(^|[\s;&|(!])(\[|test)\s[^\]]*?\s==\s"),
     "dash's test knows only ="),
    ("source", re.compile(r"(^|[\s;&|(])source\s"), "dash has no 'source': use '.'"),
    ("pipefail", re.compile(r"\bpipefail\b"), "dash has no 'set -o pipefail'"),
    ("PIPESTATUS", re.compile(r"\bPIPESTATUS\b"), "PIPESTATUS is bash-only"),
    ("EUID", re.compile(r"\$\{?EUID\b"), "EUID is unset under dash (set -u aborts)"),
    ("function keyword", re.compile(r"(^|[\s;])function\s+[A-Za-z_][A-Za-z0-9_]*"),
     "use 'name() {' not 'function name'"),
    ("here-string", re.compile(r"<<<"), "dash has no <<< here-strings"),
    ("&> redirection", re.compile(r"&>"), "dash reads '&>' as '&' then '>'"),
    ("process substitution", re.compile(r"(^|[^\w$])[<>]\("), "dash has no <( ) or >( )"),
)


@dataclass(frozen=True)
class Finding:
    """One bash-only construct in a script: line number, construct, the line, and why."""

    line: int
    construct: str
    text: str
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.construct} ({self.why}): {self.text.strip()}"


def bashisms(text: str) -> list[Finding]:
    """Every bash-only construct of CONSTRUCTS in `text`, skipping whole-line comments."""
    findings: list[Finding] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        for name, pattern, why in CONSTRUCTS:
            if pattern.search(line):
                findings.append(Finding(number, name, line, why))
    return findings
