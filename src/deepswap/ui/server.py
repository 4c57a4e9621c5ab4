"""Serving the web UI: bind the address first (so the URL printed is the one that works), a random
access token whenever the address reaches beyond this machine, then uvicorn until Ctrl-C."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import uvicorn

from ..errors import DeepswapError
from .app import create_app
from .security import is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


class UIServer:
    """The web UI over ROOT, bound to ``host:port`` (port 0: any free port)."""

    def __init__(self, root: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.root = Path(root)
        self.host = host
        self.token = None if is_loopback(host) else secrets.token_urlsafe(24)
        self.app = create_app(self.root, access_token=self.token)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
            self.socket.listen(128)  # connections wait in the backlog until uvicorn runs
        except OSError as error:
            self.socket.close()
            raise DeepswapError(f"{host}:{port}: cannot listen there ({error.strerror})") from None
        self.port = self.socket.getsockname()[1]

    @property
    def url(self) -> str:
        """The address to open; with the access token when one is needed."""
        host = socket.gethostname() if self.host in ("0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM; then stop every running job the way Ctrl-C would and wait for it."""
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=5)
        uvicorn.Server(config).run(sockets=[self.socket])
