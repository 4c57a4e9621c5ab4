"""The user's own deepswap folder and settings, shared by every workspace.

The folder is ``$DEEPSWAP_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/deepswap``, else
``~/.config/deepswap``. It holds ``config.toml``, whose ``[settings]`` table takes the same keys
as a workspace's (``sign_cert``, ``sign_key``, ``tsa_url``; paths relative to the folder), and
the self-made signing key and certificates in ``signing/``; :func:`signing_identity` says who signs
an output's Content Credentials (see :mod:`deepswap.provenance.credentials`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from .errors import DeepswapError
from .provenance.credentials import SigningIdentity, self_made_identity

SETTINGS_NAME = "config.toml"
IDENTITY_FOLDER = "signing"


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


def signing_identity(certificate_file: str | Path | None = None, key_file: str | Path | None = None,
                     tsa_url: str | None = None,
                     workspace_settings: tuple[Path, Mapping[str, Any]] | None = None) -> SigningIdentity:
    """The identity to sign with, and its time-stamp authority.

    The first of these that names a certificate and key wins: the arguments, the workspace's
    settings (``workspace_settings``: its ``deepswap.toml`` and ``[settings]`` table), the
    user's ``config.toml``; else the self-made identity in ``signing/`` (made on first use).
    The same order picks ``tsa_url``. Paths in a settings file are relative to its folder.
    """
    layers: list[tuple[Path | None, Mapping[str, Any]]] = [
        (None, {"sign_cert": certificate_file, "sign_key": key_file, "tsa_url": tsa_url})]
    if workspace_settings is not None:
        layers.append(workspace_settings)
    layers.append((settings_file(), user_settings()))
    chosen_tsa = next((tsa for file, settings in layers if (tsa := _setting(file, settings, "tsa_url"))), None)
    for file, settings in layers:
        certificate, key = _setting(file, settings, "sign_cert"), _setting(file, settings, "sign_key")
        if certificate is None and key is None:
            continue
        if certificate is None or key is None:
            missing = "sign_cert" if certificate is None else "sign_key"
            if file is None:
                argument = "certificate_file" if certificate is None else "key_file"
                raise DeepswapError(f"give a signing certificate and its key together: {argument} is missing")
            raise DeepswapError(f"{file}: settings sign_cert and sign_key go together; {missing} is missing")
        base = file.parent if file is not None else Path()
        return SigningIdentity.load(base / certificate, base / key, chosen_tsa)
    return self_made_identity(config_dir() / IDENTITY_FOLDER).with_tsa(chosen_tsa)


def _setting(file: Path | None, settings: Mapping[str, Any], name: str) -> str | None:
    value = settings.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise DeepswapError(f"{file}: settings {name} must be text, not {value!r}")
    return str(value)
