"""``python -m biasprobe``."""

import sys

from biasprobe.cli import main

sys.exit(main())
