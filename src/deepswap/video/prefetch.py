"""Overlapping video I/O with the work on frames: a reader run ahead on a thread (``prefetch``) and
a writer fed from one (``in_background``). PyAV and OpenCV release the GIL while they decode and encode."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from queue import Empty, Full, Queue
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")


def prefetch(items: Iterable[T], depth: int = 8) -> Iterator[T]:
    """Run an iterator (a frame reader) on a background thread, keeping at most ``depth`` items
    ahead, so decoding overlaps the work on the frames; its exceptions are re-raised here, in
    order. When the consumer stops early, the producer stops too and the iterator is closed."""
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put(("item", item), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("end", None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            queue.put(("error", error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="deepswap-decode", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():
            try:
                queue.get_nowait()
            except Empty:
                worker.join(timeout=0.05)


@contextmanager
def in_background(consume: Callable[[T], None], depth: int = 32) -> Iterator[Callable[[T], None]]:
    """Yield a ``put`` function whose items ``consume`` handles, in order, on a background thread
    (an encoder overlapping the model). Leaving the block waits for every item to be consumed;
    an error inside the block stops the thread without consuming the rest. Either way the thread
    has ended when the block is left, and an error of ``consume`` is re-raised in the caller
    (at the next ``put`` or on leaving)."""
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    failure: list[BaseException] = []
    abandon = threading.Event()

    def run() -> None:
        while (item := queue.get())[0] == "item":
            if failure or abandon.is_set():
                continue
            try:
                consume(item[1])
            except BaseException as error:  # re-raised in the caller's thread
                failure.append(error)

    def put(item: T) -> None:
        if failure:
            raise failure[0]
        queue.put(("item", item))

    worker = threading.Thread(target=run, name="deepswap-encode", daemon=True)
    worker.start()
    try:
        yield put
    except BaseException:
        abandon.set()
        raise
    finally:
        queue.put(("end", None))
        worker.join()
    if failure:
        raise failure[0]
