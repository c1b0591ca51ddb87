"""Guarded destroy-and-recreate of the FreeScout instance. See --help."""

import sys

from operations.rebuild_cli import main

if __name__ == "__main__":
    sys.exit(main())
