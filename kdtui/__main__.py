"""``python -m kdtui`` is the ``kdtui`` command."""

from kdtui.cli import main

main()
