"""The user's own deepswap folder and settings, shared by every workspace.

The folder is ``$DEEPSWAP_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/deepswap``, else
``~/.config/deepswap``. It holds ``config.toml``, whose ``[settings]`` table takes the same keys
as a workspace's (``sign_cert``, ``sign_key``, ``tsa_url``; paths relative to the folder), and
the self-made signing key and certificates in ``signing/`` (see
:mod:`deepswap.provenance.credentials`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from .errors import DeepswapError

SETTINGS_NAME = "config.toml"


def config_dir() -> Path:
    """The user's deepswap folder (it may not exist yet)."""
    if os.environ.get("DEEPSWAP_CONFIG_DIR"):
        return Path(os.environ["DEEPSWAP_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "deepswap"


def settings_file() -> Path:
    return config_dir() / SETTINGS_NAME


def user_settings() -> dict[str, Any]:
    """The ``[settings]`` table of the user's ``config.toml`` ({} when there is none)."""
    path = settings_file()
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise DeepswapError(f"{path}: cannot read the user settings ({error.strerror or error})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DeepswapError(f"{path}: damaged settings file ({error})") from None
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise DeepswapError(f"{path}: [settings] must be a table")
    return settings
