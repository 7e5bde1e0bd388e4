"""Checkpoint files: read them safely, recognise the architecture their weights belong to, write them.

What is not gate analysis lives here, apart from `inspect/` (which keeps images, gates, the
distributed run and the report): loading.py reads a torch or safetensors file safely (torch's
restricted unpickler unless trusted) within the bounds of bounds.py and the metadata schema of
metadata.py; layouts/ maps other people's key layouts to the zoo's; recognise.py (with fits.py)
names the zoo configuration of a checkpoint's weights, maps them once, and builds the model
holding them; writing.py is the one writer (`save_checkpoint` and convert.py, which rewrites a
checkpoint in our key layout or timm's); counters.py knows BN's optional step counters. Torch is
imported only when a file is read or written.
"""

from __future__ import annotations

from senet_cli.checkpoint.convert import ConvertReport, convert
from senet_cli.checkpoint.loading import Checkpoint, load_checkpoint
from senet_cli.checkpoint.writing import save_checkpoint

__all__ = ["Checkpoint", "ConvertReport", "convert", "load_checkpoint", "save_checkpoint"]
