"""The Python API page (docs/api.md) documents every public name of ``deepswap``, where it is defined,
so a new or moved export cannot be left out of the reference (mkdocs build --strict fails on a name
that no longer exists; this fails on one that is missing)."""

import re
from pathlib import Path

import deepswap

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_api_page_documents_every_public_name() -> None:
    documented = dict(
        reversed(path.rsplit(".", 1))
        for path in re.findall(r"^::: (deepswap\.[\w.]+)$", API_PAGE.read_text(encoding="utf-8"), re.M)
    )
    assert sorted(documented) == sorted(deepswap.__all__)
    for name, module in documented.items():
        defined_in = getattr(getattr(deepswap, name), "__module__", None)  # None for data (MODELS)
        if defined_in and defined_in.startswith("deepswap."):
            assert module == defined_in, f"{name} is documented in {module} but defined in {defined_in}"
