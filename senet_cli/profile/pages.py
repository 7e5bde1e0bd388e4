"""Page faults: how many a process takes, and what a fresh page costs to write on a CPU.

A CPU op whose output lands on memory the process has not touched yet (just mapped) takes a
minor page fault per page: the kernel finds a page, zeroes it and maps it, before the op's own
write. glibc's malloc maps every buffer of at least its mmap threshold (dynamic, from 128 KiB up
to 32 MiB on 64-bit Linux) fresh and unmaps it on free, and gives the top of its heap back to the
kernel when more than twice that is free there, so a network's large outputs (and the workspaces
its kernels allocate, such as oneDNN's reorder of a depthwise conv's input) can be written to
fresh pages run after run. On this project's EPYC a fresh page cost 350-520 us per MiB (1.4-2 us a
4 KiB page), six times what writing that memory again costs. How much a forward faults depends
on what the process allocated and freed before, not on the model alone: in a fresh `senet
profile`, EfficientNet-B0 at batch 1 faulted 22.7 MiB a run (40.0 ms; 25.4 with glibc told to
keep its memory, GLIBC_KEEP), SE-ResNet-50 at batch 8 232 MiB (979 ms; 876); inside a longer
benchmark EfficientNet-B0 faulted none. So count's latency model predicts a process that keeps
its memory, `senet profile` counts the faults of every timed run (`minor_faults`) and prices them
at calibrate's `fresh_page_seconds`, and calibrate takes the faults its points took off their
times, so that no rate depends on where the allocator stood."""

from __future__ import annotations

import mmap
import statistics
import time

PAGE_BYTES = mmap.PAGESIZE
"""Bytes of one page (4 KiB on x86-64 Linux)."""
FRESH_BYTES = 2**25
"""Memory written per fresh-page measurement: 32 MiB, 8,192 pages of 4 KiB."""
GLIBC_KEEP = "GLIBC_TUNABLES=glibc.malloc.trim_threshold=17179869184:glibc.malloc.mmap_threshold=4294967296"
"""The environment setting that makes glibc keep what it frees (no heap trimming below 16 GiB free, no
buffer under 4 GiB mapped on its own): a CPU forward then faults nothing in after its first runs
(EfficientNet-B0 at batch 1 on this project's EPYC: 40.0 ms with 22.7 MiB of faults a run, 25.4 with
this; glibc 2.36)."""


def minor_faults() -> int | None:
    """Minor page faults this process has taken so far (getrusage), or None where the platform has
    no such count (Windows)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def fresh_page_seconds(repeats: int = 5, nbytes: int = FRESH_BYTES) -> float:
    """Seconds per byte that writing memory costs on top of writing it again when it is freshly
    mapped, as an allocator that maps a buffer for each call and unmaps it on free makes an op pay:
    `repeats` times, an anonymous private mapping of `nbytes` is made, filled through torch (every
    page faulted in) and unmapped, all timed, and a mapping of the same size that stays mapped is
    filled again; the median of (first - second) / bytes, never below 0. 0.0 where the first fill
    took no faults (a platform that maps eagerly) or none can be counted."""
    import torch

    private = getattr(mmap, "MAP_PRIVATE", None)  # Unix; a shared anonymous mapping faults slower (tmpfs pages)
    if private is None or minor_faults() is None:  # pragma: no cover - Windows
        return 0.0
    flags = private | mmap.MAP_ANONYMOUS
    kept = mmap.mmap(-1, nbytes, flags=flags)
    try:
        touched = torch.frombuffer(kept, dtype=torch.uint8)
        touched.fill_(0)
        extras = []
        for _ in range(repeats):
            faults_before = minor_faults() or 0
            started = time.perf_counter()
            mapping = mmap.mmap(-1, nbytes, flags=flags)
            memory = torch.frombuffer(mapping, dtype=torch.uint8)
            memory.fill_(1)
            del memory
            mapping.close()
            first = time.perf_counter() - started
            if (minor_faults() or 0) == faults_before:
                return 0.0
            started = time.perf_counter()
            touched.fill_(1)
            again = time.perf_counter() - started
            extras.append((first - again) / nbytes)
        del touched
    finally:
        kept.close()
    return max(0.0, statistics.median(extras))
