"""``python -m nniray`` is the ``nniray`` command."""
import sys

from nniray.cli.main import main

sys.exit(main())
