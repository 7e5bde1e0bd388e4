"""How results are shown: tables (rich, Markdown, CSV), JSON, and files written atomically.

Nothing here computes; every function takes finished results and returns text or a rich object.
"""
