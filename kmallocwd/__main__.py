"""``python -m kmallocwd`` runs the same CLI as the ``kmallocwd`` command."""

import sys

from kmallocwd.cli import main

sys.exit(main())
