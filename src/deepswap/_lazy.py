"""Packages whose public names are imported from their modules only when first read.

A package lists its names and the module each comes from and calls ``export_lazily``; importing the
package then imports none of those modules (so ``deepswap status`` and a light module such as
``deepswap.workspace`` do not pay for torch, OpenCV, dlib or PyAV). A listed name always means the
object it names, even where a submodule of the same name (``deepswap.train``, a stage package and
a function) has been imported and bound itself to the package.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _LazyPackage(types.ModuleType):
    """A package module whose listed names (``_lazy_names``: name → module, relative to it) are
    looked up in their modules on each read (Python caches the modules themselves)."""

    _lazy_names: dict[str, str]

    def __getattribute__(self, name: str) -> Any:
        lazy_names = super().__getattribute__("_lazy_names")
        if name in lazy_names:
            package = super().__getattribute__("__name__")
            return getattr(importlib.import_module(f".{lazy_names[name]}", package), name)
        return super().__getattribute__(name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._lazy_names))


def export_lazily(package: str, names: dict[str, str]) -> None:
    """Make the package ``package`` (its ``__name__``) import each of ``names`` (name → module
    within the package) when the name is first read."""
    module = sys.modules[package]
    module._lazy_names = names  # type: ignore[attr-defined]
    module.__class__ = _LazyPackage
