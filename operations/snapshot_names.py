"""Names of the manual Lightsail snapshots the tools take, and the check Lightsail applies to them.

Lightsail accepts 2 to 255 characters of letters, digits, `-`, `_` and `.`; an ISO time with `:` or
`+` is rejected, so timestamps are written `YYYYmmddTHHMMSSZ`. Checking before the call turns a late
API error in the middle of a rebuild into an early, named one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from operations.errors import UsageError

# The brief's rule, plus the API model's (`\w[\w\-]*\w`): first and last character a word character.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*[A-Za-z0-9_]$")
MAX_LENGTH = 255

PRE_REBUILD_MARK = "pre-rebuild"
POST_INSTALL_MARK = "modules-installed"


def validate_snapshot_name(name: str) -> str:
    """Return `name` when Lightsail would accept it; raise UsageError naming the problem."""
    if not isinstance(name, str) or len(name) < 2:
        raise UsageError(
            f"snapshot name {name!r} is too short: Lightsail needs at least 2 characters",
            hint="use operations.snapshot_names.pre_rebuild_snapshot_name(...) to build it",
        )
    if len(name) > MAX_LENGTH:
        raise UsageError(f"snapshot name is longer than {MAX_LENGTH} characters: {name[:40]}...")
    if not _NAME.match(name):
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "-_."))})
        detail = (
            f"characters {''.join(bad)!r} are not allowed"
            if bad
            else "it must start and end with a letter or digit"
        )
        raise UsageError(
            f"snapshot name {name!r} is not a valid Lightsail name: {detail}",
            hint="only letters, digits, '-', '_' and '.' are allowed (times as YYYYmmddTHHMMSSZ)",
        )
    return name


def utc_stamp(now_utc: datetime) -> str:
    """`20260504T231628Z` for an aware datetime (converted to UTC); naive times are refused."""
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        # A naive time would silently be the operator's local time, and the name would lie.
        raise ValueError("a timezone-aware datetime is required (datetime.now(timezone.utc))")
    return now_utc.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def pre_rebuild_snapshot_name(now_utc: datetime, instance_name: str = "raxx-tickets") -> str:
    """`<instance>-pre-rebuild-YYYYmmddTHHMMSSZ`: the backup taken before the replacement."""
    return validate_snapshot_name(f"{instance_name}-{PRE_REBUILD_MARK}-{utc_stamp(now_utc)}")


def post_install_snapshot_name(now_utc: datetime, instance_name: str = "raxx-tickets") -> str:
    """`<instance>-modules-installed-YYYYmmddTHHMMSSZ`: the fast-restore target after a rebuild."""
    return validate_snapshot_name(f"{instance_name}-{POST_INSTALL_MARK}-{utc_stamp(now_utc)}")


def fast_restore_prefix(instance_name: str = "raxx-tickets") -> str:
    """Prefix shared by the post-install snapshots (for list_snapshots)."""
    return f"{instance_name}-{POST_INSTALL_MARK}-"


def pre_rebuild_prefix(instance_name: str = "raxx-tickets") -> str:
    """Prefix shared by the pre-rebuild snapshots (for list_snapshots)."""
    return f"{instance_name}-{PRE_REBUILD_MARK}-"
