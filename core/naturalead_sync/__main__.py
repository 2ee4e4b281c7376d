"""``python -m naturalead_sync``: the same as the ``naturalead-sync`` command."""

from .cli import main

main()
