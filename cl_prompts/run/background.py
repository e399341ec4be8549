"""One write at a time on a thread of its own: a run's checkpoint is written while it trains on.

A checkpoint of a ``growing_pool`` run holds two 10,000-wide Gram matrices (0.9 GB); writing
and syncing it to disk after every experience is I/O the run need not wait for. The caller
copies what is to be written first (:func:`cl_prompts.run.checkpoints.checkpoint_snapshot`),
so the write sees the state of the moment it was submitted.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable

__all__ = ["BackgroundWriter"]


class BackgroundWriter:
    """Runs one write at a time on a thread of its own.

    ``submit(write)`` first waits for the write before it. An error raised by a write comes
    out of the next ``submit`` or ``wait``, in the caller's thread: a failed checkpoint still
    stops the run, one experience later than a write in the caller's thread would, and the
    checkpoint before it is kept (the write is atomic).
    """

    def __init__(self, name: str = "cl_prompts-writer"):
        self._name = name
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def busy(self) -> bool:
        """A write is in flight."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, write: Callable[[], object]) -> None:
        """Wait for the write before (raising its error), then start ``write()`` on a new thread."""
        self.wait()

        def run() -> None:
            try:
                write()
            except BaseException as exc:  # handed over to the caller's thread by wait()
                self._error = exc

        # not a daemon: the interpreter lets a started checkpoint finish before it exits
        self._thread = threading.Thread(target=run, name=self._name)
        self._thread.start()

    def wait(self) -> None:
        """Block until the write in flight has finished; raise its error, if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        """:meth:`wait` for a caller that is already failing: the write in flight completes, and
        an error of its own is warned about instead of replacing the caller's."""
        try:
            self.wait()
        except Exception as exc:  # noqa: BLE001 - reported, the caller's error goes on
            warnings.warn(f"a background write failed too: {exc}", RuntimeWarning, stacklevel=2)
