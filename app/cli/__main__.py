"""``python -m takeover.app.cli``: the same as the `takeover` command."""

import sys

from takeover.app.cli.main import main

sys.exit(main())
