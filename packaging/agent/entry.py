"""PyInstaller's script for the packaged agent: everything lives in agent.frozen."""

import sys

from agent.frozen import main

if __name__ == "__main__":
    sys.exit(main())
