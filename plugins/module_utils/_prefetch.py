# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Work done in a thread ahead of whoever needs it.

``prefetch``: a producer of byte chunks, a bounded number of bytes ahead of its consumer.
Receiving a stream (socket reads, decompression) and working on it (parsing, hashing,
compressing) then overlap: both sides spend most of their time in calls that release the
GIL. Memory stays bounded by ``depth`` batches of about ``batch_size`` bytes.

``InBackground``: one call, such as a helper container's start or a listing, that waits on
the engine while the caller goes on with another (the engine serves two side by side in
little more time than one).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Generator, Iterable, List, Optional

_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(chunks: Iterable[bytes], depth: int = 8, batch_size: int = 1 << 20, wait: bool = False) -> Generator[bytes, None, None]:
    """Yield the bytes of iterable ``chunks`` in order, joined into batches of about
    ``batch_size`` bytes, while a thread keeps reading ahead. An exception of the producer
    is raised in the consumer, at the point where the producer failed. Closing the
    generator early makes the thread stop at its next chunk (a producer blocked in a read
    stops when whatever it reads from is closed); with ``wait``, the close returns only once
    it stopped and ``chunks`` was closed, for a producer whose reads always return (a file's)
    and whose source is read again afterwards."""
    pending: queue.Queue[Any] = queue.Queue(depth)  # batches (bytes), then _END or a _Failure
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        batch: List[bytes] = []
        size = 0
        try:
            for chunk in chunks:
                if not chunk:
                    continue
                batch.append(chunk)
                size += len(chunk)
                if size >= batch_size:
                    if not hand_over(b"".join(batch)):
                        return
                    batch, size = [], 0
            if size and not hand_over(b"".join(batch)):
                return
            hand_over(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            hand_over(_Failure(exc))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="persist-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item = pending.get()
            if item is _END:
                break
            if isinstance(item, _Failure):
                raise item.error
            yield item
        producer.join()
    finally:
        stop.set()
        if wait:
            producer.join()


class InBackground:
    """``call()`` run in a thread of its own from now on. ``result()`` waits for it and returns
    its value or raises its error; ``settle()`` waits and returns the value, or None when it
    failed (for a cleanup, which must not raise over another error)."""

    def __init__(self, call: Callable[[], Any], name: str = "persist-background") -> None:
        self._value: Any = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(call,), name=name, daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self._value = call()
        except BaseException as exc:  # raised in the caller, by result()
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def settle(self) -> Any:
        self._thread.join()
        return None if self._error is not None else self._value
