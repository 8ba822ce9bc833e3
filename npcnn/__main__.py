"""``python -m npcnn ...``: see :mod:`npcnn.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
