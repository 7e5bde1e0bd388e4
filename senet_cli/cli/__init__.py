"""The `senet` command line: app.py assembles one module per command."""
