"""Images to run through a model for `inspect`: a folder tree, shipped sample photographs, or noise.

  DIR         an ImageFolder tree (DIR/<class>/<image>), class folders give the labels; with
              `limit`, a seeded random subset, so every class is represented.
  "samples"   the photograph matplotlib ships (grace_hopper.jpg), as 30 views: centre and corner
              crops at three scales, each also mirrored. Real pixels on any machine with the
              dependencies installed, no download; no labels.
  "synthetic" standard-normal images, generated batch by batch from a fixed seed (smoke tests).

Folders are read defensively, as they may hold anything (list_folder, decode): only regular files
are opened, each once however many links name it; directory links are followed but each directory
entered once (a link loop ends); an image whose header declares more than MAX_IMAGE_PIXELS pixels is
refused before its pixels are decoded; an unreadable image (truncated, garbage, not an image, a
FIFO) is skipped and listed in `ImageSource.skipped`, or stops the run with `strict`.

Preprocessing is the torchvision convention: resize the short side to input / 0.875 and centre-crop
(inputs of 64 and below, as CIFAR models take, are resized straight to the input), then normalise
with the ImageNet mean and std unless the checkpoint's metadata says otherwise.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from senet_cli import paths
from senet_cli.errors import ArgumentError, SenetError, first_line
from senet_cli.inspect.results import EMPTY_DATA, Preprocess, SkippedImage

SOURCES = ("samples", "synthetic")
SAMPLE_PHOTO = "grace_hopper.jpg"
SAMPLE_SCALES = (1.0, 0.8, 0.6)
SYNTHETIC_DEFAULT = 64
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""What torchvision's ImageFolder takes as an image."""
MAX_IMAGE_PIXELS = 64_000_000
"""The most pixels an image's header may declare (8000 x 8000; 192 MB as RGB): a 20000 x 20000 PNG
of a few kilobytes is refused before decoding, not allocated."""
MAX_FOLDER_DEPTH = 32
"""Folders an image may sit below its class folder: deep enough for any dataset's own layout."""


Shard = tuple[int, int]
"""(rank, world_size): this process takes positions rank, rank + world_size, ... of the image list."""


class ImageSource:
    """A finite stream of (images [B, 3, H, W], labels [B] or None) batches, for one pass.

    `count` is the images this process reads (its shard's), `total` those of every process;
    `head()` gives the first batch of the whole list, whoever reads it (to set up histograms of
    unbounded gates the same way on every process). `skipped` grows as the batches are read: (order
    key, image) for each unreadable image this process met (the listing's on process 0 only), and
    `unreadable` counts those met while reading (for progress).
    """

    def __init__(self, description: str, count: int, classes: tuple[str, ...],
                 batches: Iterator[tuple[torch.Tensor, torch.Tensor | None]],
                 head: Callable[[], torch.Tensor], total: int | None = None,
                 skipped: list[tuple[tuple[int, int], SkippedImage]] | None = None) -> None:
        self.skipped = [] if skipped is None else skipped
        self.unreadable = 0
        self.description = description
        self.count = count
        self.total = count if total is None else total
        self.classes = classes
        self.head = head
        self._batches = batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        return self._batches


def open_images(data: str, preprocess: Preprocess, *, limit: int | None = None, batch: int = 16,
                workers: int = 0, seed: int = 0, shard: Shard = (0, 1), strict: bool = False) -> ImageSource:
    """The images `data` names (see the module doc), `batch` at a time, at most `limit` of them;
    with `shard`, only this process's share; with `strict`, an unreadable image is an error
    instead of a skip."""
    if not data:
        raise ArgumentError(EMPTY_DATA, arguments=("data",))
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
    kind = paths.path_kind(folder, "data folder")
    if kind != "directory":
        raise ArgumentError(
            "{data} takes 'samples', 'synthetic' or an ImageFolder directory; '{value}' {problem}",
            arguments=("data",), value=data, problem="does not exist" if kind == "missing" else "is not a directory",
        )
    return _folder(folder, preprocess, limit, batch, workers, seed, shard, strict)


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

    with matplotlib.cbook.get_sample_data(SAMPLE_PHOTO) as stream:  # type: ignore[union-attr]  # a file; stub adds ndarray (.npy)
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
            seed: int, shard: Shard, strict: bool) -> ImageSource:
    from torch.utils.data import DataLoader, Subset

    classes, files, listing_skipped, duplicates = list_folder(folder)
    if strict and listing_skipped:
        raise _strict_error(listing_skipped[0])
    selected: Sequence[int] = range(len(files))
    description = f"{folder}: {len(files)} image files in {len(classes)} classes"
    if duplicates:
        description += f" ({duplicates} more paths to the same files read once)"
    if limit is not None and limit < len(files):
        generator = torch.Generator().manual_seed(seed)
        selected = sorted(torch.randperm(len(files), generator=generator)[:limit].tolist())
        description += f", a random {limit} of them (seed {seed})"
    dataset = _Files([files[i] for i in selected], _transform(preprocess))
    mine = shard_positions(len(selected), shard)
    loader = DataLoader(Subset(dataset, mine), batch_size=batch, shuffle=False, num_workers=workers,
                        collate_fn=_collate)
    rank = shard[0]
    # the listing is the same on every process: rank 0 alone reports what it skipped
    skipped = [((0, order), image) for order, image in enumerate(listing_skipped)] if rank == 0 else []
    source: ImageSource

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        for positions, images, labels, reasons in loader:  # workers start here, after every check
            for position, reason in zip(positions, reasons, strict=True):
                if reason:
                    image = SkippedImage(dataset.files[position][0], reason)
                    if strict:
                        raise _strict_error(image)
                    skipped.append(((1, position), image))
                    source.unreadable += 1
            if images is not None:
                yield images, labels

    def head() -> torch.Tensor:
        """The first batch a one-process run yields: positions 0..batch-1 of the whole list less the
        unreadable ones (the loader's collate drops them), or the next such batch if none is
        readable. Taking `batch` readable images instead (one more past a bad file) gave an unbounded
        gate a different histogram range than one process."""
        for start in range(0, len(dataset), batch):
            chosen = [image for _, image, _, _ in (dataset[p] for p in range(start, min(start + batch, len(dataset))))
                      if image is not None]
            if chosen:
                return torch.stack(chosen)
        raise SenetError(f"no readable images in {description}")

    source = ImageSource(description, len(mine), classes, batches(), head=head, total=len(selected),
                         skipped=skipped)
    return source


def list_folder(folder: Path) -> tuple[tuple[str, ...], list[tuple[str, int]], list[SkippedImage], int]:
    """The ImageFolder tree under `folder`: (classes, [(path, label)], skipped, duplicates).

    Classes are the subfolders of `folder` (sorted) that hold images; images are the files with an
    image extension anywhere below them. Directory links are followed, but each directory (by device
    and inode) is entered once, so a link loop ends; each file (by device and inode) is listed once,
    the first path in sorted order naming it; a path that is not a regular file once links are
    resolved (a FIFO, a device, a dangling link) is skipped and said. A tree more than
    MAX_FOLDER_DEPTH folders below a class folder is refused in one line (see `_walk`).
    """
    root = os.stat(folder)
    visited = {(root.st_dev, root.st_ino)}
    seen: set[tuple[int, int]] = set()
    files: list[tuple[str, int]] = []
    skipped: list[SkippedImage] = []
    duplicates = 0
    classes: list[str] = []
    for name in sorted(entry.name for entry in os.scandir(folder) if _is_dir(entry)):
        top = folder / name
        if not _first_visit(top, visited):
            continue
        found = 0
        for directory, names in _walk(top, visited):
            for file_name in names:
                if not file_name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                path = os.path.join(directory, file_name)
                try:
                    info = os.stat(path)
                except OSError as error:
                    skipped.append(SkippedImage(path, f"cannot be opened ({error.strerror or 'dangling link'})"))
                    continue
                if not stat.S_ISREG(info.st_mode):
                    skipped.append(SkippedImage(path, "not a regular file (a FIFO, device or socket)"))
                    continue
                if (info.st_dev, info.st_ino) in seen:
                    duplicates += 1
                    continue
                seen.add((info.st_dev, info.st_ino))
                files.append((path, len(classes)))
                found += 1
        if found:
            classes.append(name)
    if not files:
        raise ArgumentError(
            "{data} {folder}: not an ImageFolder tree (DIR/<class>/<image>): no class folder holds a readable "
            "file ending in {extensions}", arguments=("data",), folder=folder, extensions=", ".join(IMAGE_EXTENSIONS),
        )
    return tuple(classes), files, skipped, duplicates


def _walk(top: Path, visited: set[tuple[int, int]]) -> Iterator[tuple[str, list[str]]]:
    """(directory, sorted file names) under `top`, top-down in sorted order as os.walk gives them,
    with an explicit stack instead of os.walk's recursion: a tree MAX_FOLDER_DEPTH folders deeper than
    its class folder is refused in one line naming where (os.walk raised RecursionError at ~1,000)."""
    stack: list[tuple[str, int]] = [(str(top), 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue  # unreadable: os.walk skipped it too
        folders = sorted(entry.name for entry in entries if _is_dir(entry))
        names = sorted(entry.name for entry in entries if not _is_dir(entry))
        yield directory, names
        inside = [path for path in (os.path.join(directory, name) for name in folders)
                  if _first_visit(Path(path), visited)]
        if inside and depth >= MAX_FOLDER_DEPTH:
            raise ArgumentError(
                "{data} {folder}: folders nest more than {limit} deep below the class folder {top} (at "
                "{where}); an ImageFolder tree is DIR/<class>/<image>, with at most {limit} folders between",
                arguments=("data",), folder=top.parent, limit=MAX_FOLDER_DEPTH, top=top.name,
                where=_tail_shown(directory),
            )
        stack.extend((path, depth + 1) for path in reversed(inside))


def _tail_shown(path: str, limit: int = 80) -> str:
    """A long path as its last `limit` characters: the deep end is the part that says where."""
    return path if len(path) <= limit else "..." + path[-(limit - 3):]


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows links; False for a dangling one
    except OSError:
        return False


def _first_visit(directory: Path, visited: set[tuple[int, int]]) -> bool:
    """Whether `directory` (links resolved) is entered for the first time; marks it entered."""
    try:
        info = os.stat(directory)
    except OSError:
        return False
    key = (info.st_dev, info.st_ino)
    if key in visited:
        return False
    visited.add(key)
    return True


def decode(path: str) -> Image.Image:
    """The RGB image at `path`, refused (ValueError) unless it is a regular file whose header declares at
    most MAX_IMAGE_PIXELS pixels: checked before any pixel is decoded."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO swapped in cannot block
    with os.fdopen(descriptor, "rb") as stream:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ValueError("not a regular file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                image = Image.open(stream)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise ValueError(f"its header declares pixels over the cap of {MAX_IMAGE_PIXELS:,}") from None
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ValueError(f"its header declares {width}x{height} pixels, over the cap of {MAX_IMAGE_PIXELS:,}")
            return image.convert("RGB")


class _Files(torch.utils.data.Dataset[tuple[int, torch.Tensor | None, int, str]]):
    """The listed images as a map-style dataset: (position, tensor, label, "") for a readable image,
    (position, None, label, reason) for one that is not."""

    def __init__(self, files: list[tuple[str, int]], transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.files = files
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, position: int) -> tuple[int, torch.Tensor | None, int, str]:
        path, label = self.files[position]
        try:
            return position, self.transform(decode(path)), label, ""
        except UnidentifiedImageError:  # its message names the file descriptor, not the file
            return position, None, label, "not in an image format PIL reads (garbage, text or unknown)"
        except Exception as error:  # noqa: BLE001 (PIL fails on a bad file in many ways; each is a skip)
            return position, None, label, f"{type(error).__name__}: {first_line(error, 100)}"


def _collate(items: list[tuple[int, torch.Tensor | None, int, str]]
             ) -> tuple[list[int], torch.Tensor | None, torch.Tensor | None, list[str]]:
    """(positions, images of the readable ones or None, their labels, reasons ("" when readable))."""
    good = [(image, label) for _, image, label, _ in items if image is not None]
    images = torch.stack([image for image, _ in good]) if good else None
    labels = torch.tensor([label for _, label in good]) if good else None
    return [position for position, *_ in items], images, labels, [reason for *_, reason in items]


def _strict_error(image: SkippedImage) -> ArgumentError:
    return ArgumentError(
        "image {path} is unreadable ({reason}); {strict} stops at the first such image (without it, unreadable "
        "images are skipped and counted)", arguments={"strict": ("strict", True)}, path=image.path,
        reason=image.reason,
    )
