"""What the C runtimes are asked: glibc to keep freed blocks for reuse while training and to give them back when
asked; OpenMP to hand back a thread's workers. Where a runtime is missing (musl, macOS, Windows) its calls do
nothing."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os

import torch

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its dynamic threshold on 64-bit systems
TRIM_THRESHOLD = 128 << 20


@functools.cache
def libc():
    """glibc, or None."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return lib if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim") else None
    except OSError:
        return None


@functools.cache
def keep_freed_pages() -> bool:
    """Let glibc reuse the blocks a training step frees instead of handing them back to the system.

    Each step allocates its gradients and casts afresh (a 400x784 weight's gradient is 1.25 MB). Above glibc's
    mmap threshold, or once the freed top of a heap passes its trim threshold, those pages go back to the kernel
    and are faulted in again at the next step: the VAE's float32 gradient casts took 0.33 s of a 2.7 s epoch,
    against 0.08 s copied into kept memory, and an epoch took 1.60 s instead of 1.89 s with this set. What is
    kept is given back by :func:`release_free_memory` (the app calls it on every script run)."""
    lib = libc()
    return bool(lib and lib.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and lib.mallopt(M_TRIM_THRESHOLD,
                                                                                        TRIM_THRESHOLD))


def release_free_memory() -> None:
    """Give what was freed back to the system: glibc keeps freed blocks in per-thread arenas, and each of the app's
    script runs is a new thread. Under 1 ms a call; with it, ``bench/memory.py``'s peak (five runs open in six
    views) fell from 1,587 to 1,334 MB."""
    lib = libc()
    if lib is not None:
        lib.malloc_trim(0)


def release_openmp_threads() -> bool:
    """Hand back the calling thread's OpenMP worker threads (OpenMP 5's ``omp_pause_resource_all``); True if done.

    GNU OpenMP keeps a team of threads for every thread that has run a parallel region, and once it manages more
    threads than there are cores it all but stops spinning between regions. A job's worker thread then paid a
    wake-up of ~0.2 ms on every parallel op, where the main thread paid 15 us: after the main thread had computed
    anything (a model built, a run scored), the next job trained 1.4x slower. :meth:`TrainingJob.start` calls this
    from the thread that starts the job."""
    lib = _openmp()
    return lib is not None and lib.omp_pause_resource_all(1) == 0  # omp_pause_soft


@functools.cache
def _openmp():
    """The OpenMP runtime torch loaded (its symbols are global, or in torch/lib), or None."""
    for path in [None, *glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "lib*omp*.so*"))]:
        try:
            lib = ctypes.CDLL(path)
            lib.omp_pause_resource_all.argtypes = [ctypes.c_int]
            return lib
        except (OSError, AttributeError):
            continue
    return None
