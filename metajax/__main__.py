"""``python -m metajax`` is ``metajax``."""

import sys

from metajax.cli import main

if __name__ == "__main__":
    sys.exit(main())
