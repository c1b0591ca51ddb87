"""Every exit code the scripts use, in one place (documented in --help and the README)."""

OK = 0
"""Success (for the plan guard: the plan is safe)."""
FAILED = 1
"""A step failed; the instance is protected again and the next command is printed."""
USAGE = 2
"""Bad input: arguments, configuration, or a plan file that cannot be read."""
STOPPED = 3
"""A pre-flight check said no (data on the host, a plan that is not a rebuild); nothing changed."""
LOCKED = 4
"""Another update holds the stack's lock; nothing changed."""
UNSAFE = 5
"""A failure after which the instance could NOT be confirmed protected: act on the message now."""
NEEDS_REBUILD = 10
"""Plan guard: the change replaces the instance, so it needs scripts/rebuild.py."""
FORBIDDEN = 20
"""Plan guard: the change would delete or replace something that must survive."""
