"""How results are shown: tables (rich, Markdown, CSV), JSON text and figures.

Nothing here computes; every function takes finished results and returns text, a rich object or
a written figure. Nothing here knows the command line's flags: that is senet_cli.cli's.
"""
