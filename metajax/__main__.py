"""``python -m metajax`` is ``metajax``."""

import sys

from metajax.cli import main

sys.exit(main())
