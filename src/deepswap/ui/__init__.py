"""The web UI (`deepswap ui`): the whole pipeline in a browser, over the same library API as the CLI.

Modules: ``server`` (bind, token, uvicorn), ``app`` (the Starlette app: pages, forms, event
streams), ``security`` (token, cross-site writes, upload cap, paths), ``jobs`` (long steps in child
processes, one per workspace), ``actions`` (every call into the library). Templates are Jinja2;
the browser side is htmx (vendored, ``static/htmx.min.js``), one stylesheet and ``static/app.js``.
"""

from .app import create_app
from .server import UIServer

__all__ = ["UIServer", "create_app"]
