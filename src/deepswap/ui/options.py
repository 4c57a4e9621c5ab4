"""What `deepswap ui` can be told and the web UI's settings, each declared once (see
``deepswap.options``), and what counts as a loopback address. Imports nothing heavy."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..options import OptionError, check, declaration, option


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeOptions:
    """Where the web UI listens, whether it needs its access token, and whether to open a browser."""

    host: str = option("127.0.0.1", help="Address to listen on (127.0.0.1 and other loopback addresses: this machine only).")
    port: int = option(7860, minimum=0, maximum=65535, help="Port to listen on (0: any free one).")
    open_browser: bool = option(False, flag="--open", help="Open the page (with its access token) in the default browser.")
    no_token: bool = option(False, help="Answer without the access token: only on a machine no other account uses, "
                                        "and only on a loopback address.")

    def __post_init__(self) -> None:
        check(self)
        if self.no_token and not is_loopback(self.host):
            raise OptionError(f"{{}} is only for a loopback address, not {self.host}", declaration(ServeOptions, "no_token"))


@dataclass(frozen=True)
class UISettings:
    """The web UI's keys in the ``[settings]`` table of the user's ``config.toml``."""

    ui_allow_private_urls: bool = option(False, cli=False, form=False,
                                         help="The URL field may fetch from loopback and private networks (say, a NAS).")
    ui_uploads_quota_gib: float = option(20.0, minimum=0, above=True, meaning="GiB", cli=False, form=False,
                                         help="What each workspace's uploads/ folder may hold, in GiB.")

    def __post_init__(self) -> None:
        check(self)

    @property
    def uploads_quota_bytes(self) -> int:
        return int(self.ui_uploads_quota_gib * 2 ** 30)
