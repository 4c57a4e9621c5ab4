"""What a connection may hold of the server: uvicorn's HTTP/1.1 protocol with a deadline for a
request's headers and a cap on open connections.

uvicorn times out idle keep-alive connections but not a request whose headers arrive slowly or
never: a thousand half-sent requests would hold a thousand sockets until the process runs out of
file descriptors and stops answering anyone. Here a connection must deliver a whole request head
within ``HEADER_TIMEOUT_SECONDS`` of opening (or of its previous response), and when more than
``MAX_CONNECTIONS`` are open the oldest one that is not being answered is closed to make room, so
a normal request still gets through. Request bodies are timed by ``security.Guard``.
"""

from __future__ import annotations

import asyncio
import resource

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 256


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the header deadline and the connection cap described above."""

    header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()
        if len(self.connections) > MAX_CONNECTIONS:
            waiting = [connection for connection in self.connections
                       if isinstance(connection, GuardedH11Protocol) and connection.waiting_for_request]
            oldest = min(waiting, key=lambda connection: connection.opened, default=self)
            oldest.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    @property
    def waiting_for_request(self) -> bool:
        """No request of this connection is being answered: its next head has not fully arrived."""
        return (self.cycle is None or self.cycle.response_complete) and self.conn.their_state in (h11.IDLE, h11.DONE)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self.opened = self.loop.time()
        self.header_deadline = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self._close_if_still_waiting)

    def _disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _close_if_still_waiting(self) -> None:
        self.header_deadline = None
        if self.waiting_for_request and not self.transport.is_closing():
            self.transport.close()


def raise_open_file_limit() -> None:
    """Let this process open as many files as the system allows it (the soft limit is often 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
