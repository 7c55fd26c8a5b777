"""``python -m xbar``: the command line."""

import sys

from xbar.mapping.cli.main import main

sys.exit(main())
