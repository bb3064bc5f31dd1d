"""``python -m crmkit``: the same as the ``crmkit`` command."""

import sys

from crmkit.delivery.cli import main

sys.exit(main())
