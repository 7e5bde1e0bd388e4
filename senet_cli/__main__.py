"""`python -m senet_cli` runs the CLI."""

from senet_cli.cli.app import main

main()
