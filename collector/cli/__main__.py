"""``python -m collector.cli``: the same as ``courtguard-collector``."""

import sys

from collector.cli import main

sys.exit(main())
