"""``python -m kdtui.engine RUN_DIR``: train exactly one run."""

import sys

from kdtui.engine.trainer import main

sys.exit(main())
