"""Images to run through a model for `inspect`: a folder tree, shipped sample photographs, or noise.

  DIR         an ImageFolder tree (DIR/<class>/<image>), class folders give the labels; with
              `limit`, a seeded random subset, so every class is represented.
  "samples"   the photograph matplotlib ships (grace_hopper.jpg), as 30 views: centre and corner
              crops at three scales, each also mirrored. Real pixels on any machine with the
              dependencies installed, no download; no labels.
  "synthetic" standard-normal images, generated batch by batch from a fixed seed (smoke tests).

Preprocessing is the torchvision convention: resize the short side to input / 0.875 and centre-crop
(inputs of 64 and below, as CIFAR models take, are resized straight to the input), then normalise
with the ImageNet mean and std unless the checkpoint's metadata says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from PIL import Image, ImageOps

from senet_cli.errors import ArgumentError, first_line
from senet_cli.inspect.results import Preprocess

SOURCES = ("samples", "synthetic")
SAMPLE_PHOTO = "grace_hopper.jpg"
SAMPLE_SCALES = (1.0, 0.8, 0.6)
SYNTHETIC_DEFAULT = 64


class ImageSource:
    """A finite stream of (images [B, 3, H, W], labels [B] or None) batches, for one pass."""

    def __init__(self, description: str, count: int, classes: tuple[str, ...],
                 batches: Iterator[tuple[torch.Tensor, torch.Tensor | None]] | None = None) -> None:
        self.description = description
        self.count = count
        self.classes = classes
        self._batches = batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        if self._batches is None:
            raise RuntimeError("image source has no batches")
        return self._batches


def open_images(data: str, preprocess: Preprocess, *, limit: int | None = None, batch: int = 16,
                workers: int = 0, seed: int = 0) -> ImageSource:
    """The images `data` names (see the module doc), `batch` at a time, at most `limit` of them."""
    if limit is not None and limit < 1:
        raise ArgumentError("{limit} must be at least 1, got {value}", arguments=("limit",), value=limit)
    if batch < 1:
        raise ArgumentError("{batch} must be at least 1, got {value}", arguments=("batch",), value=batch)
    if workers < 0:
        raise ArgumentError("{workers} must be 0 or more, got {value}", arguments=("workers",), value=workers)
    if data == "synthetic":
        return _synthetic(preprocess, limit or SYNTHETIC_DEFAULT, batch, seed)
    if data == "samples":
        return _samples(preprocess, limit, batch)
    folder = Path(data)
    if not folder.is_dir():
        raise ArgumentError(
            "{data} takes 'samples', 'synthetic' or an ImageFolder directory; '{value}' {problem}",
            arguments=("data",), value=data, problem="is not a directory" if folder.exists() else "does not exist",
        )
    return _folder(folder, preprocess, limit, batch, workers, seed)


def _transform(preprocess: Preprocess, *, direct: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    from torchvision import transforms as T

    height, width = preprocess.size
    if direct or max(height, width) <= 64:
        resize = [T.Resize((height, width), antialias=True)]
    else:
        resize = [T.Resize(round(min(height, width) / 0.875), antialias=True), T.CenterCrop((height, width))]
    return T.Compose([*resize, T.ToTensor(), T.Normalize(preprocess.mean, preprocess.std)])


def _synthetic(preprocess: Preprocess, count: int, batch: int, seed: int) -> ImageSource:
    def batches() -> Iterator[tuple[torch.Tensor, None]]:
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, count, batch):
            size = min(batch, count - start)
            yield torch.randn(size, 3, *preprocess.size, generator=generator), None

    return ImageSource(f"synthetic: {count} standard-normal images (seed {seed})", count, (), batches())


def _samples(preprocess: Preprocess, limit: int | None, batch: int) -> ImageSource:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data(SAMPLE_PHOTO) as stream:
        photo = Image.open(stream).convert("RGB")
    views = _views(photo)
    views = views[:limit] if limit else views
    transform = _transform(preprocess, direct=True)  # the views are already square crops

    def batches() -> Iterator[tuple[torch.Tensor, None]]:
        for start in range(0, len(views), batch):
            tensors = [transform(view) for view in views[start:start + batch]]
            yield torch.stack(tensors), None

    description = f"samples: {len(views)} views (crops at 3 scales, mirrored) of matplotlib's {SAMPLE_PHOTO}"
    return ImageSource(description, len(views), (), batches())


def _views(photo: Image.Image) -> list[Image.Image]:
    """Centre and four corner square crops at each of SAMPLE_SCALES, each also mirrored."""
    width, height = photo.size
    views: list[Image.Image] = []
    for scale in SAMPLE_SCALES:
        side = int(min(width, height) * scale)
        corners = [((width - side) // 2, (height - side) // 2), (0, 0), (width - side, 0), (0, height - side),
                   (width - side, height - side)]
        for left, top in corners:
            crop = photo.crop((left, top, left + side, top + side))
            views += [crop, ImageOps.mirror(crop)]
    return views


def _folder(folder: Path, preprocess: Preprocess, limit: int | None, batch: int, workers: int,
            seed: int) -> ImageSource:
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import ImageFolder

    try:
        dataset = ImageFolder(str(folder), transform=_transform(preprocess))
    except (FileNotFoundError, RuntimeError) as error:
        raise ArgumentError("{data} {folder}: not an ImageFolder tree (DIR/<class>/<image>): {reason}",
                            arguments=("data",), folder=folder, reason=first_line(error)) from None
    indices: Sequence[int] = range(len(dataset))
    description = f"{folder}: {len(dataset)} images in {len(dataset.classes)} classes"
    if limit is not None and limit < len(dataset):
        generator = torch.Generator().manual_seed(seed)
        indices = sorted(torch.randperm(len(dataset), generator=generator)[:limit].tolist())
        description += f", a random {limit} of them (seed {seed})"
    loader = DataLoader(Subset(dataset, list(indices)), batch_size=batch, shuffle=False, num_workers=workers)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        yield from loader

    return ImageSource(description, len(indices), tuple(dataset.classes), batches())
