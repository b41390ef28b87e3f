"""Writes that a kill or a Ctrl-C cannot leave half done.

* :func:`deferred_sigint` holds a Ctrl-C (``SIGINT``) that arrives inside the block and raises the
  ``KeyboardInterrupt`` once the block is over, so an interrupted checkpoint or ``results.json`` write is
  finished first (a ``SIGKILL`` cannot be held: there the temporary file and rename below keep the previous
  version).
* :func:`atomic_write` writes ``path.tmp``, flushes it to disk and renames it over ``path``: a reader sees
  the old file or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np


@contextlib.contextmanager
def deferred_sigint() -> Iterator[None]:
    """Hold ``SIGINT`` during the block; if one arrived, act on it (``KeyboardInterrupt``) afterwards.

    Only the main thread can install signal handlers; elsewhere the block runs unprotected (a Ctrl-C is
    delivered to the main thread anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):  # Python's default handler raises KeyboardInterrupt; an outer deferral records
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt


def tmp_path_of(path: Path) -> Path:
    """The temporary file that :func:`atomic_write` renames over ``path`` (``<name>.tmp`` beside it)."""
    return path.with_name(path.name + ".tmp")


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Replace ``path`` by ``data`` atomically (temporary file, fsync, rename), holding Ctrl-C meanwhile."""
    path = Path(path)
    tmp = tmp_path_of(path)
    payload = data.encode() if isinstance(data, str) else data
    with deferred_sigint():
        try:
            with open(tmp, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def jsonable(value: Any) -> Any:
    """``json.dumps`` fallback: numpy / JAX scalars and arrays become numbers and lists, paths strings."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.generic, np.ndarray, jax.Array)):
        arr = np.asarray(value)
        return arr.item() if arr.ndim == 0 else arr.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically (see :func:`atomic_write`)."""
    return atomic_write(path, json.dumps(data, indent=2, default=jsonable) + "\n")
