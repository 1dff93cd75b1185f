"""``python -m phonebank``: the same entry point as the ``phonebank`` console script."""

import sys

from phonebank.cli import main

sys.exit(main())
