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
at calibrate's `fresh_page_cost`, and calibrate takes the faults its points took off their
times, so that no rate depends on where the allocator stood."""

from __future__ import annotations

import functools
import mmap
import statistics
import time
from typing import NamedTuple

PAGE_BYTES = mmap.PAGESIZE
"""Bytes of one page (4 KiB on x86-64 Linux)."""
FRESH_BYTES = 2**25
"""Memory written per fresh-page measurement: 32 MiB, 8,192 pages of 4 KiB."""
GLIBC_KEEP = "GLIBC_TUNABLES=glibc.malloc.trim_threshold=4294967296:glibc.malloc.mmap_threshold=4294967296"
"""The environment setting that makes glibc keep what it frees (no heap trimming below 4 GiB free, no
buffer under 4 GiB mapped on its own): a CPU forward then faults nothing in after its first runs
(EfficientNet-B0 at batch 1 on this project's EPYC: 40.0 ms with 22.7 MiB of faults a run, 25.4 with
this; glibc 2.36)."""
KEEP_BYTES = 2**30
"""What `keep_freed_memory` sets glibc's trim and mmap thresholds to (mallopt takes an int)."""


class FreshPages(NamedTuple):
    """What a page fault costs: seconds per fault and bytes per fault (the page size, or more where
    transparent huge pages map 2 MiB at a fault)."""

    seconds_per_fault: float
    bytes_per_fault: float

    @property
    def us_per_mib(self) -> float:
        """Microseconds per MiB of memory faulted in (0 when nothing was measured)."""
        return self.seconds_per_fault / self.bytes_per_fault * 2**20 * 1e6 if self.bytes_per_fault else 0.0


NO_FRESH_PAGES = FreshPages(0.0, 0.0)


def minor_faults() -> int | None:
    """Minor page faults this process has taken so far (getrusage), or None where the platform has
    no such count (Windows)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


@functools.cache
def is_glibc() -> bool:
    """Whether this process's C library is glibc (platform.libc_ver reads the interpreter's binary to
    tell, so once per process)."""
    import platform

    return platform.libc_ver()[0] == "glibc"


def keep_freed_memory() -> bool:
    """Make this process's glibc keep what it frees (mallopt: trim and mmap thresholds at KEEP_BYTES,
    as GLIBC_KEEP does from the environment), so that its ops stop faulting memory in again; for the
    rest of the process (`senet calibrate` measures in such a process, the one the latency model
    predicts). False, and nothing changed, where the C library is not glibc."""
    import ctypes

    if not is_glibc():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - a glibc without that name
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    kept = bool(libc.mallopt(m_trim_threshold, KEEP_BYTES)) and bool(libc.mallopt(m_mmap_threshold, KEEP_BYTES))
    _kept[0] = _kept[0] or kept
    return kept


_kept = [False]  # whether keep_freed_memory has made this process's glibc keep its memory


def allocator_text() -> str:
    """How this process's allocator treats freed memory, for a device file's method: "glibc keeping
    its memory" (keep_freed_memory, or GLIBC_KEEP in the environment), "glibc as it comes", or the
    C library's name."""
    import os
    import platform

    if not is_glibc():
        return platform.libc_ver()[0] or "not glibc"
    name, value = GLIBC_KEEP.split("=", 1)
    kept = _kept[0] or value in os.environ.get(name, "")
    return "glibc keeping its memory" if kept else "glibc as it comes"


def fresh_page_cost(repeats: int = 5, nbytes: int = FRESH_BYTES) -> FreshPages:
    """What a page fault costs, as an allocator that maps a buffer for each call and unmaps it on free
    makes an op pay: `repeats` times, an anonymous private mapping of `nbytes` is made, filled through
    torch (every page faulted in) and unmapped, all timed, and a mapping of the same size that stays
    mapped is filled again; per fault, the median of (first - second) / the faults the first took, and
    nbytes / those faults. One untimed cycle comes first: a process that maps, faults in and unmaps
    buffers call after call gets back pages it has just freed, and those are what a network's faults
    cost; a page the process has not had for a while can cost far more where the machine is a VM whose
    host backs memory lazily (on this project's Firecracker VM, in a process that had freed nothing for
    seconds: 2,800-3,300 us per MiB against 390-510 right after a cycle).
    NO_FRESH_PAGES where the first fill took no faults (a platform that maps
    eagerly), none can be counted, or memory cannot be mapped."""
    import torch

    private = getattr(mmap, "MAP_PRIVATE", None)  # Unix; a shared anonymous mapping faults slower (tmpfs pages)
    if private is None or minor_faults() is None or repeats < 1:  # pragma: no cover - Windows
        return NO_FRESH_PAGES
    flags = private | mmap.MAP_ANONYMOUS
    try:
        kept = mmap.mmap(-1, nbytes, flags=flags)
    except OSError:
        return NO_FRESH_PAGES
    extras, sizes = [], []
    try:
        touched = torch.frombuffer(kept, dtype=torch.uint8)
        touched.fill_(0)
        for timed in (False, *(True for _ in range(repeats))):  # an untimed cycle first: see the doc
            faults_before = minor_faults() or 0
            started = time.perf_counter()
            mapping = mmap.mmap(-1, nbytes, flags=flags)
            memory = torch.frombuffer(mapping, dtype=torch.uint8)
            memory.fill_(1)
            del memory
            mapping.close()
            first = time.perf_counter() - started
            faults = (minor_faults() or 0) - faults_before
            if faults <= 0:
                break
            if not timed:
                continue
            started = time.perf_counter()
            touched.fill_(1)
            again = time.perf_counter() - started
            extras.append(max(first - again, 0.0) / faults)
            sizes.append(nbytes / faults)
        del touched
    except OSError:
        return NO_FRESH_PAGES
    finally:
        kept.close()
    if not extras:
        return NO_FRESH_PAGES
    return FreshPages(statistics.median(extras), statistics.median(sizes))
