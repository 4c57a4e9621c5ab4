"""The web UI (`deepswap ui`): the whole pipeline in a browser, over the same library API as the CLI.

Modules: ``server`` (bind, token, uvicorn), ``connections`` (header deadline, connection cap),
``app`` (the routes and ``create_app``), ``site`` (ROOT, the files pages may show, rendering),
``forms`` (form values, uploads, the jobs the forms start), ``security`` (token, cross-site writes,
upload cap and pace, response headers, paths, URLs), ``jobs`` and ``worker`` (long steps in child
processes, one per workspace), ``actions`` (every call into the library). Templates are Jinja2;
the browser side is htmx (vendored, ``static/htmx.min.js``), one stylesheet and ``static/app.js``.
The names below are imported when first used.
"""

from __future__ import annotations

from .._lazy import export_lazily

_API = {"UIServer": "server", "create_app": "app"}
__all__ = sorted(_API)

export_lazily(__name__, _API)
