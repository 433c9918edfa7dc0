"""Worker-process pools that behave: spawned, deaf to Ctrl-C, and gone with their parent.

Used for the aggregator's mask removal and a node's CKKS encryption.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["worker_pool"]

_PARENT_POLL_SECONDS = 0.5


def worker_pool(workers: int, *, start_method: str = "spawn") -> ProcessPoolExecutor:
    """A ProcessPoolExecutor whose workers

    - are spawned by default (no forked copy of the parent's secrets or threads);
    - ignore SIGINT and SIGTERM: Ctrl-C reaches the whole process group, and a
      worker killed mid-job would break the pool; the parent decides how to stop;
    - exit when their parent does, however it died: a worker blocked on its job
      queue otherwise outlives a parent killed with SIGKILL or os._exit.
    """
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context(start_method),
        initializer=_worker_start,
        initargs=(os.getpid(),),
    )


def _worker_start(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(
        target=_exit_with_parent, args=(parent,), name="exit-with-parent", daemon=True
    ).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(0)
