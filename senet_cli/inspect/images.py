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


Shard = tuple[int, int]
"""(rank, world_size): this process takes positions rank, rank + world_size, ... of the image list."""


class ImageSource:
    """A finite stream of (images [B, 3, H, W], labels [B] or None) batches, for one pass.

    `count` is the images this process reads (its shard's), `total` those of every process;
    `head()` gives the first batch of the whole list, whoever reads it (to set up histograms of
    unbounded gates the same way on every process).
    """

    def __init__(self, description: str, count: int, classes: tuple[str, ...],
                 batches: Iterator[tuple[torch.Tensor, torch.Tensor | None]],
                 head: Callable[[], torch.Tensor], total: int | None = None) -> None:
        self.description = description
        self.count = count
        self.total = count if total is None else total
        self.classes = classes
        self.head = head
        self._batches = batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        return self._batches


def open_images(data: str, preprocess: Preprocess, *, limit: int | None = None, batch: int = 16,
                workers: int = 0, seed: int = 0, shard: Shard = (0, 1)) -> ImageSource:
    """The images `data` names (see the module doc), `batch` at a time, at most `limit` of them;
    with `shard`, only this process's share."""
    if limit is not None and limit < 1:
        raise ArgumentError("{limit} must be at least 1, got {value}", arguments=("limit",), value=limit)
    if batch < 1:
        raise ArgumentError("{batch} must be at least 1, got {value}", arguments=("batch",), value=batch)
    if workers < 0:
        raise ArgumentError("{workers} must be 0 or more, got {value}", arguments=("workers",), value=workers)
    if data == "synthetic":
        return _synthetic(preprocess, limit or SYNTHETIC_DEFAULT, batch, seed, shard)
    if data == "samples":
        return _samples(preprocess, limit, batch, shard)
    folder = Path(data)
    if not folder.is_dir():
        raise ArgumentError(
            "{data} takes 'samples', 'synthetic' or an ImageFolder directory; '{value}' {problem}",
            arguments=("data",), value=data, problem="is not a directory" if folder.exists() else "does not exist",
        )
    return _folder(folder, preprocess, limit, batch, workers, seed, shard)


def shard_positions(count: int, shard: Shard) -> list[int]:
    """The positions of `count` listed images that this shard takes: every image exactly once."""
    rank, world_size = shard
    return list(range(rank, count, world_size))


def _transform(preprocess: Preprocess, *, direct: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    from torchvision import transforms as T

    height, width = preprocess.size
    if direct or max(height, width) <= 64:
        resize = [T.Resize((height, width), antialias=True)]
    else:
        resize = [T.Resize(round(min(height, width) / 0.875), antialias=True), T.CenterCrop((height, width))]
    return T.Compose([*resize, T.ToTensor(), T.Normalize(preprocess.mean, preprocess.std)])


def _synthetic(preprocess: Preprocess, count: int, batch: int, seed: int, shard: Shard) -> ImageSource:
    """Standard-normal images from one seeded stream, batch by batch; a shard keeps its positions of
    each batch, so the images are the same whatever the number of processes."""
    rank, world_size = shard

    def stream() -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, count, batch):
            yield torch.randn(min(batch, count - start), 3, *preprocess.size, generator=generator)

    def batches() -> Iterator[tuple[torch.Tensor, None]]:
        for start, images in zip(range(0, count, batch), stream(), strict=True):
            taken = [i for i in range(images.shape[0]) if (start + i) % world_size == rank]
            if taken:
                yield images[taken], None

    description = f"synthetic: {count} standard-normal images (seed {seed})"
    return ImageSource(description, len(shard_positions(count, shard)), (), batches(), head=lambda: next(stream()),
                       total=count)


def _samples(preprocess: Preprocess, limit: int | None, batch: int, shard: Shard) -> ImageSource:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data(SAMPLE_PHOTO) as stream:
        photo = Image.open(stream).convert("RGB")
    views = _views(photo)
    views = views[:limit] if limit else views
    transform = _transform(preprocess, direct=True)  # the views are already square crops
    mine = [views[i] for i in shard_positions(len(views), shard)]

    def load(chosen: Sequence[Image.Image]) -> torch.Tensor:
        return torch.stack([transform(view) for view in chosen])

    def batches() -> Iterator[tuple[torch.Tensor, None]]:
        for start in range(0, len(mine), batch):
            yield load(mine[start:start + batch]), None

    description = f"samples: {len(views)} views (crops at 3 scales, mirrored) of matplotlib's {SAMPLE_PHOTO}"
    return ImageSource(description, len(mine), (), batches(), head=lambda: load(views[:batch]), total=len(views))


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
            seed: int, shard: Shard) -> ImageSource:
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
    mine = [indices[i] for i in shard_positions(len(indices), shard)]
    loader = DataLoader(Subset(dataset, mine), batch_size=batch, shuffle=False, num_workers=workers)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        yield from loader  # workers start on the first batch, after every check has passed

    def head() -> torch.Tensor:
        return torch.stack([dataset[i][0] for i in indices[:batch]])

    return ImageSource(description, len(mine), tuple(dataset.classes), batches(), head=head, total=len(indices))
