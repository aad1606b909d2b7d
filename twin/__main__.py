"""``python -m twin`` is ``gridtwin``."""

import sys

from twin.cli import main

sys.exit(main())
