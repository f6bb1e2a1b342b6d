#!/usr/bin/env python
"""agree-manage for the sample project: ``python sample_project/manage.py COMMAND``
(``python sample_project/manage.py help`` lists the commands)."""

import os
import sys
from pathlib import Path


def main() -> None:
    # The settings and models are the package sample_project: its parent directory (the
    # repository's root) must be importable, from wherever this script is run.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("AGREE_SETTINGS_MODULE", "sample_project.settings")
    from agree.management import main as manage

    sys.exit(manage())


if __name__ == "__main__":
    main()
