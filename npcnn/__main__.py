"""``python -m npcnn ...``: see :mod:`npcnn.cli` (the installed ``npcnn`` script is the same program)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m npcnn"))
