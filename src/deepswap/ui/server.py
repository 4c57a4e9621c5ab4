"""Serving the web UI: bind the address first (so the URL printed is the one that works), a random
access token in that URL (on loopback too: every account on the machine can reach loopback), then
uvicorn with timeouts and connection limits until Ctrl-C, SIGTERM or SIGHUP (a closed terminal)."""

from __future__ import annotations

import dataclasses
import secrets
import signal
import socket
from pathlib import Path
from types import FrameType

import uvicorn

from ..errors import DeepswapError
from ..options import OptionError
from ..userconfig import settings_file, user_settings
from .app import create_app
from .connections import GuardedH11Protocol, raise_open_file_limit
from .options import ServeOptions, UISettings, is_loopback

KEEP_ALIVE_SECONDS = 5
BACKLOG = 128  # connections waiting to be accepted, and accepted in one go (uvicorn's default, 2048, accepts past a
               # 1,024-file limit before the connection cap can close any)


def ui_settings() -> UISettings:
    """The web UI's settings from the user's ``config.toml`` (the defaults where it sets none)."""
    declared_names = {item.name for item in dataclasses.fields(UISettings)}
    given = {key: value for key, value in user_settings().items() if key in declared_names}
    try:
        return UISettings(**given)
    except OptionError as error:
        raise DeepswapError(f"{settings_file()}: settings {error}") from None


class UIServer:
    """The web UI over ROOT, bound to ``options.host:options.port`` (port 0: any free port), needing
    the access token printed in the URL unless ``options.no_token``.

    The web UI's keys of the ``[settings]`` of the user's ``config.toml`` apply (``UISettings``)."""

    def __init__(self, root: str | Path, options: ServeOptions = ServeOptions()) -> None:
        self.root = Path(root)
        self.host = host = options.host
        self.token = None if options.no_token else secrets.token_urlsafe(24)
        self.app = create_app(self.root, access_token=self.token, settings=ui_settings(),
                              local_host=host if is_loopback(host) else None)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, options.port))
            self.socket.listen(BACKLOG)  # connections wait in the backlog until uvicorn runs
        except OSError as error:
            self.socket.close()
            raise DeepswapError(f"{host}:{options.port}: cannot listen there ({error.strerror})") from None
        self.port = self.socket.getsockname()[1]

    @property
    def url(self) -> str:
        """The address to open; with the access token when one is needed."""
        host = socket.gethostname() if self.host in ("0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def run(self) -> None:
        """Serve until Ctrl-C, SIGTERM or SIGHUP; then stop every running job the way Ctrl-C would and wait for it."""
        raise_open_file_limit()
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=5, http=GuardedH11Protocol,
                                timeout_keep_alive=KEEP_ALIVE_SECONDS, backlog=BACKLOG)
        server = uvicorn.Server(config)

        def hang_up(signum: int, frame: FrameType | None) -> None:
            server.handle_exit(signum, frame)

        previous = signal.signal(signal.SIGHUP, hang_up)
        try:
            server.run(sockets=[self.socket])
        finally:
            signal.signal(signal.SIGHUP, previous)
