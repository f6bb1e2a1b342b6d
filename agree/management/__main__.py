"""``python -m agree.management ...`` is ``agree-manage ...`` (for when the console script is
not on PATH, e.g. a process started with a specific interpreter)."""

import sys

from agree.management import main

sys.exit(main())
