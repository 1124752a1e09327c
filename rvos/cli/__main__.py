"""`python -m rvos.cli ...` is the `rvos` command."""

import sys

from rvos.cli import main

main(sys.argv[1:])
