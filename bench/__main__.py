"""`python -m bench ...` is the same as `blindsum bench ...`."""

import sys

from node.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
