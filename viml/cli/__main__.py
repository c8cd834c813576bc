"""`python -m viml.cli` runs the `viml` command (used to start child processes with this interpreter)."""

import sys

from viml.cli import main

sys.exit(main())
