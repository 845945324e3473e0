"""`python -m intermud3 check-config PATH`."""

import sys

from intermud3.cli import main

sys.exit(main())
