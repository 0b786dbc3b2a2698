"""``python -m obliviate ...`` is the ``obliviate`` command (e.g. for ``accelerate launch -m obliviate train ...``)."""

from obliviate.cli import main

main()
