"""``python -m kdtui.engine RUN_DIR``: train exactly one run.

The engine's share of the machine (threads, priority) is chosen and applied before torch
is imported: the OpenMP and MKL runtimes read their settings once, when they load.
"""

import sys
from pathlib import Path

from kdtui.threads import share_machine

sharing = share_machine(Path(sys.argv[1])) if len(sys.argv) == 2 else None

from kdtui.engine.trainer import main  # noqa: E402  (after the threads are chosen)

sys.exit(main(sharing=sharing))
