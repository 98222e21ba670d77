"""Seeds without global state. torch's global RNG is seeded in one place, :func:`seeded_init`, under a lock, only to
build modules (their initial weights come from it); everything else draws from its own ``torch.Generator``."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch

_INIT_LOCK = threading.Lock()  # two threads building modules must not interleave their draws


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Modules built inside draw their initial weights from ``seed``, bitwise repeatably on CPU, while no other
    thread builds a module (a model rebuilt to load saved weights into takes the lock too)."""
    with _INIT_LOCK:
        torch.manual_seed(seed)
        yield
