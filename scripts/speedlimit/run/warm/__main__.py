"""``python -m speedlimit.run.warm serve SOCKET``: a warm server (how a client starts one)."""

import os
import sys
from pathlib import Path

from speedlimit.run.warm.shared import IDLE_SECONDS
from speedlimit.run.warm.server import serve

if len(sys.argv) >= 3 and sys.argv[1] == "serve":
    serve(Path(sys.argv[2]), float(os.environ.get("SPEEDLIMIT_WARM_IDLE", IDLE_SECONDS)))
else:
    sys.exit("usage: python -m speedlimit.run.warm serve SOCKET")
