"""``python -m cronsync.cli``: the ``cronsync`` command, for a host without its console script."""

import sys

from cronsync.cli.main import main

sys.exit(main())
