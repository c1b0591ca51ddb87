"""Fast restore of the FreeScout instance from a Lightsail snapshot. See --help."""

import sys

from operations.restore_cli import main

if __name__ == "__main__":
    sys.exit(main())
