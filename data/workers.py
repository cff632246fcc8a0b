"""Worker processes that end with the process that started them.

A ``concurrent.futures.ProcessPoolExecutor`` worker waits for its next task on a queue whose pipe
it also holds the write end of (a queue pickles both ends), so it never sees end-of-file there.
When the parent shuts its pool down, the worker gets a stop message; when the parent is SIGKILLed
(the OOM killer, ``kill -9``) nothing comes, and the worker, and with it the forkserver (which
lives while any client holds its "alive" pipe), waits forever, holding its memory (~0.9 GB for an
SVM worker, seen after an OOM-killed training). ``multiprocessing.Pool``'s workers close that
write end at start, see end-of-file when the parent dies, and end by themselves.

Every started process has a sentinel on its parent, ``multiprocessing.parent_process().sentinel``:
the read end of the pipe its start-up data came down, whose write end only the parent holds, so it
becomes readable (end-of-file) when the parent dies, whatever the start method (fork, spawn,
forkserver). :func:`exit_with_parent`, called in a pool's initializer, waits on it in a daemon
thread and ends the worker. Workers only compute and return results; the parent writes every
file, so ending a worker at any point leaves nothing half-written.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import threading

EXIT_CODE = 70  # a worker whose parent died; shows in the forkserver's bookkeeping only


def exit_with_parent() -> None:
    """In a worker process: end it as soon as its parent process dies. No-op in a main process."""
    parent = mp.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(EXIT_CODE)  # no cleanup to run: the parent that wanted the results is gone

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
