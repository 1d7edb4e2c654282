"""``python -m sovstack.cli``: the same as the ``sovstack`` script."""

from sovstack.cli import main

main()
