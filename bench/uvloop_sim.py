"""Run ``tgw`` (simulators.cli.main) with uvloop's event loop policy installed first.

    python bench/uvloop_sim.py sim smsc --listen 127.0.0.1:0 --account bench:bench

``tgw sim smsc`` has no loop option, and ``asyncio.run`` honours the installed policy, so this is all
it takes to run the SMSC simulator as a uvloop sink in its own process. Without uvloop installed it
runs on the default loop and says so on stderr.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    import uvloop
except ImportError:  # pragma: no cover - the dev extra installs it
    print("uvloop_sim: uvloop not installed, using the default asyncio loop", file=sys.stderr)
else:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

from simulators.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
