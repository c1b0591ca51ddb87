"""Offline plan of the FreeScout stack: `python scripts/plan.py [--stack prod] [--json]`.

Evaluates the real program on the real Pulumi.<stack>.yaml under Pulumi's mock runtime (no
credentials, no network). The logic lives in freescout/offline_plan.py.
"""

import sys
from pathlib import Path

from freescout.offline_plan import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], Path(__file__).resolve().parent.parent))
