"""`python -m ewaste.cli`: the `ewaste` command."""

from . import main

main()
