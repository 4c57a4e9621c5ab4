"""Every option a user can set is declared once, on the field of its option dataclass: its name,
type and default (the field's), its help, range or choices, and how each front end names it
(``Declared``, in the field's metadata). The command line (``cli``), the web form (``ui.forms``)
and the documentation are built from these declarations, and ``check`` tests a value against its
declaration when an option object is built, as faceswap builds its command line and its GUI from
one list, and whisper's ``DecodingOptions`` is the one place decoding options live.

An option object refuses a bad value with an ``OptionError``, which names the option by its
declaration; each front end says it in its own words (``--mask-erode`` on the command line, "Mask
erode" in the web form). Imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import DeepswapError

_KEY = "deepswap.option"


@dataclass(frozen=True)
class Declared:
    """How an option is offered and checked.

    ``name``: the field's (set by ``declared``); ``flag``: the command line's name (default
    ``--field-name``); ``label``: the web form's (default: the field name in words); ``minimum``
    / ``maximum`` (``above``: the value must be greater than ``minimum``); ``choices``; ``meaning``:
    what a number is, said in a range error ("a fraction of the face"); ``bare``: the value of a
    text option given on the command line without one (``--ray`` alone: "auto"), as in click's
    options with an optional value; ``cli`` / ``form``: whether the command line / the web form
    offer it (an option in neither is the library's alone, but still checked)."""

    help: str
    flag: str = ""
    label: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    meaning: str = ""
    bare: str | None = None
    cli: bool = True
    form: bool = True
    name: str = ""

    @property
    def cli_name(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def form_label(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def range_text(self) -> str:
        """The range or choices in words: "-0.3..0.3", "> 0", "≥ 1", "a2b or b2a"; "" when any value goes."""
        if self.choices:
            return ", ".join(self.choices[:-1]) + (" or " if len(self.choices) > 1 else "") + self.choices[-1]
        low, high = (_number(bound) for bound in (self.minimum, self.maximum))
        if self.minimum is not None and self.maximum is not None:
            return f"in ({low}, {high}]" if self.above else f"{low}..{high}"
        if self.minimum is not None:
            return f"{'>' if self.above else '≥'} {low}"
        return f"≤ {high}" if self.maximum is not None else ""


@dataclass(frozen=True)
class Option:
    """One declared option of an option class: its field, its declaration and, for an option of a
    nested option object (``ConvertOptions.replace``), the path of fields that leads to it."""

    field: dataclasses.Field[Any]
    declared: Declared
    type: Any
    path: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.declared.name

    @property
    def default(self) -> Any:
        if self.field.default is not dataclasses.MISSING:
            return self.field.default
        if self.field.default_factory is not dataclasses.MISSING:
            return self.field.default_factory()
        return None

    @property
    def kind(self) -> type:
        """The value's type without ``None``: bool, int, float, str or pathlib.Path (a Literal is str)."""
        kind = self.type
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        return str if typing.get_origin(kind) is typing.Literal else kind


class OptionError(DeepswapError):
    """A value an option does not take. ``template`` holds a ``{}`` for each of ``options`` (their
    declarations); ``str()`` names them by their fields, ``said`` in a front end's own words."""

    def __init__(self, template: str, *options: Declared) -> None:
        self.template = template
        self.options = options
        super().__init__(template.format(*(option.name for option in options)))

    def said(self, name_of: Callable[[Declared], str]) -> str:
        return self.template.format(*(name_of(option) for option in self.options))


def option(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **declaration: Any) -> Any:
    """A dataclass field declaring an option (``declaration``: the fields of ``Declared``)."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={_KEY: Declared(**declaration)})


def declared(cls: type, path: tuple[str, ...] = ()) -> Iterator[Option]:
    """The options an option class declares, in field order; a field holding another option
    class yields that class's options (with the field in their ``path``)."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        kind = hints[item.name]
        if dataclasses.is_dataclass(kind):
            yield from declared(kind, (*path, item.name))  # type: ignore[arg-type]
        elif _KEY in item.metadata:
            declaration = dataclasses.replace(item.metadata[_KEY], name=item.name)
            yield Option(item, declaration, kind, (*path, item.name))


def declaration(cls: type, name: str) -> Declared:
    """The declaration of option ``name`` of ``cls`` (for an error naming it)."""
    return next(found.declared for found in declared(cls) if found.name == name)


def build(cls: type, values: dict[str, Any]) -> Any:
    """An option object of ``cls`` from values by option name (nested objects built from theirs);
    an option not given takes its default."""
    hints = typing.get_type_hints(cls)
    arguments = {}
    for item in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[item.name]):
            arguments[item.name] = build(hints[item.name], values)
        elif item.name in values and _KEY in item.metadata:
            arguments[item.name] = values[item.name]
    return cls(**arguments)


def check(instance: Any) -> None:
    """Test every declared option of ``instance`` (not nested ones: they test themselves) against
    its choices and range; None passes (the option is not set)."""
    for found in declared(type(instance)):
        if len(found.path) > 1:
            continue
        value = getattr(instance, found.name)
        if value is None:
            continue
        spec = found.declared
        if not _of_kind(value, found.kind):
            raise OptionError(f"{{}} must be {_KIND_WORDS[found.kind]}, not {value!r}", spec)
        if spec.choices and value not in spec.choices:
            raise OptionError(f"{{}} must be {spec.range_text}, not {value!r}", spec)
        if spec.minimum is None and spec.maximum is None:
            continue
        too_low = spec.minimum is not None and (value <= spec.minimum if spec.above else value < spec.minimum)
        too_high = spec.maximum is not None and value > spec.maximum
        if too_low or too_high or not math.isfinite(value):
            meaning = f" ({spec.meaning})" if spec.meaning else ""
            raise OptionError(f"{{}} must be {spec.range_text}{meaning}, not {value}", spec)


_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _of_kind(value: Any, kind: Any) -> bool:
    """Whether ``value`` is of a simple option type (any other type is the option object's to check)."""
    if kind not in _KIND_WORDS:
        return True
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind is bool
    return isinstance(value, {int: numbers.Integral, float: numbers.Real, str: str}[kind])


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
