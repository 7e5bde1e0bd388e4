"""Models from outside the zoo (`torchvision:NAME`, `timm:NAME`, `file.py:callable`,
`package.module:callable`): everything about them in one place.

- names.py: their names and keywords -> checked ExternalConfigs -> the callables that build them;
- build.py: the models built, their attention found by class, their blocks, the model without attention;
- known.py: the attention classes of timm and torchvision recognised by class (torch-free data);
- load.py: a state dict loaded strictly into such a model.

Torch-free to import (this file imports nothing); each module imports torch where it needs it.
"""
