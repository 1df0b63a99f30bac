"""``RWLock``: many readers or one writer, taking turns so that neither starves the other."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class _Guard:
    """A reusable context manager calling ``acquire`` on entry and ``release`` on exit."""

    __slots__ = ("_acquire", "_release")

    def __init__(self, acquire: Callable[[], None], release: Callable[[], None]) -> None:
        self._acquire, self._release = acquire, release

    def __enter__(self) -> None:
        self._acquire()

    def __exit__(self, *exc: Any) -> None:
        self._release()


class RWLock:
    """A readers-writer lock: ``with lock.read():`` may be held by many threads at once, ``with lock.write():``
    by one thread and no reader.

    Phase-fair: a waiting writer blocks new readers, and a finishing writer first admits every reader
    that waited for it, so neither a stream of readers nor one of writers starves the other. The
    writer may re-enter ``write()`` and take ``read()`` inside it; a reader must not take ``read()``
    again (a writer waiting in between would deadlock it) nor ``write()``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._waiting_readers = 0
        self._readers_turn = False
        self._writer: int | None = None
        self._depth = 0
        self._waiting_writers = 0
        self._read = _Guard(self.acquire_read, self.release_read)
        self._write = _Guard(self.acquire_write, self.release_write)

    def read(self) -> _Guard:
        """``with lock.read():`` holds the lock shared."""
        return self._read

    def write(self) -> _Guard:
        """``with lock.write():`` holds the lock exclusively."""
        return self._write

    def acquire_read(self) -> None:
        """Take the lock shared: waits while a thread writes, or waits to write and readers have had their turn."""
        if self._writer == threading.get_ident():  # the writer reads what it holds
            return
        with self._cond:
            self._waiting_readers += 1
            while self._writer is not None or (self._waiting_writers and not self._readers_turn):
                self._cond.wait()
            self._waiting_readers -= 1
            if not self._waiting_readers:
                self._readers_turn = False
            self._readers += 1

    def release_read(self) -> None:
        """Give back a shared hold."""
        if self._writer == threading.get_ident():
            return
        with self._cond:
            self._readers -= 1
            if not self._readers:
                self._cond.notify_all()

    def acquire_write(self) -> None:
        """Take the lock exclusively: waits for the readers (and those whose turn it is) and any other writer."""
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                self._waiting_writers += 1
                try:
                    while self._writer is not None or self._readers or self._readers_turn:
                        self._cond.wait()
                finally:
                    self._waiting_writers -= 1
                self._writer = me
            self._depth += 1

    def release_write(self) -> None:
        """Give back one exclusive hold; the last one lets the waiting readers in first."""
        with self._cond:
            self._depth -= 1
            if not self._depth:
                self._writer = None
                self._readers_turn = self._waiting_readers > 0
                self._cond.notify_all()
