"""`deepswap ui` started as a user starts it, in a real process, for the browser and shared-machine tests."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit


@dataclass
class LiveUI:
    """A running server: the URL it printed, and plain HTTP requests to it."""

    url: str
    process: subprocess.Popen[str]

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    @property
    def token(self) -> str | None:
        found = re.search(r"[?&]token=([^&]+)", self.url)
        return found.group(1) if found else None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                signed_in: bool = True, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        """``method path`` on a new connection; ``signed_in``: with the token's cookie as the browser keeps it."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if signed_in and self.token:
            sent["Cookie"] = f"deepswap_token_{self.port}={self.token}"
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, {key.lower(): value for key, value in response.getheaders()}, response.read()
        finally:
            connection.close()

    def csrf_token(self, page: str = "/") -> str:
        status, _, body = self.request("GET", page)
        found = re.search(r'"X-CSRF-Token": "([^"]+)"', body.decode())
        assert status == 200 and found, (status, body[:200])
        return found.group(1)

    def post_form(self, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]] | None = None,
                  timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
        """A multipart form post as the page's htmx sends it (CSRF header, same origin)."""
        boundary = "deepswap-test-boundary"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                 for name, value in fields.items()]
        for name, (filename, data) in (files or {}).items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                         f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body, {
            "Content-Type": f"multipart/form-data; boundary={boundary}", "X-CSRF-Token": self.csrf_token(),
            "Origin": f"http://127.0.0.1:{self.port}", "Sec-Fetch-Site": "same-origin"}, timeout=timeout)


@contextmanager
def running_ui(root: Path, *options: str, config_dir: Path | None = None) -> Iterator[LiveUI]:
    """`deepswap ui ROOT OPTIONS --port 0` as a user starts it (``config_dir``: the user's deepswap
    folder, with its config.toml). Leaving stops it with Ctrl-C (SIGINT), which must end it
    cleanly, unless the test ended it already."""
    env = {**os.environ, "DEEPSWAP_CONFIG_DIR": str(config_dir)} if config_dir is not None else None
    server = subprocess.Popen([sys.executable, "-c", "from deepswap.cli import main; main()", "ui", str(root),
                               "--port", "0", *options], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        found = re.search(r"http://\S+", line)
        assert found, f"no URL in {line!r}"
        yield LiveUI(found.group(0), server)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            assert server.wait(timeout=120) == 0
            assert "deepswap ui stopped" in server.stdout.read()  # type: ignore[union-attr]
