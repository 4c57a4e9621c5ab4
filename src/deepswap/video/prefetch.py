"""Running a frame reader ahead on a thread (PyAV and OpenCV release the GIL while decoding)."""

from __future__ import annotations

import threading
from queue import Empty, Full, Queue
from typing import Any, Iterable, Iterator, TypeVar

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
