"""``python -m npcnn ...`` as a script for mpirun (tests/test_distributed.py runs the files here)."""

import sys

import _common  # noqa: F401  (puts the checkout first on sys.path)

from npcnn import cli

sys.exit(cli.main(sys.argv[1:]))
