"""Typed conversion between plain YAML data and dataclasses.

One place checks every key and every value against the dataclass field types, so a typo in a profile, a recipe
or a ``--set`` override is reported as one line that names the setting and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from . import secret_names, shellsafe

T = TypeVar("T")


class ConfigError(ValueError):
    """Invalid configuration input; ``str(err)`` is one line naming the setting and the fix."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting, self.problem, self.fix = setting, problem, fix
        super().__init__(f"{setting}: {problem} (fix: {fix})")


NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""Names (profile, recipe, sweep, variant) reach file names, comments and Slurm job names: a safe set only."""


@dataclasses.dataclass(frozen=True)
class Valid:
    """The valid values of a field, checked by ``from_dict`` (every load, ``--set`` and record goes through it)."""

    lo: float | None = None
    """Smallest allowed number (None: no lower bound)."""
    hi: float | None = None
    """Largest allowed number (None: no upper bound)."""
    name: bool = False
    """A name: letters, digits, '.', '_', '-', 1 to 64 characters."""

    def describe(self) -> str:
        if self.name:
            return "letters, digits, . _ -; 1 to 64 characters"
        return f"{_num(self.lo)} to {_num(self.hi)}"

    def check(self, value: Any, path: str) -> None:
        """Raise ConfigError unless ``value`` is valid (None is left to the field's type)."""
        if value is None:
            return
        if self.name:
            if not NAME_RE.fullmatch(str(value)):
                raise ConfigError(path, f"{str(value)[:80]!r} is not a safe name", f"use {self.describe()}")
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(path, f"{value!r} is not a finite number", f"use a value from {self.describe()}")
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ConfigError(path, f"{value!r} is out of range", f"use a value from {self.describe()}")


def _num(value: float | None) -> str:
    if value is None:
        return "any"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def doc(default: Any, text: str, lo: float | None = None, hi: float | None = None, name: bool = False) -> Any:
    """A dataclass field with a default and a one-line documentation string, kept at runtime; ``lo``/``hi``: its
    valid range (numbers), ``name``: a safe name. The range is part of the field's doc."""
    meta: dict[str, Any] = {"doc": text}
    if lo is not None or hi is not None or name:
        meta["valid"] = Valid(lo, hi, name)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def valid_of(cls: type, name: str) -> Valid | None:
    """The valid range of one field of a dataclass (None: any value of its type)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get("valid")
    raise KeyError(name)


def nested(factory: Any, text: str) -> Any:
    """A dataclass field holding another dataclass, with its documentation string."""
    return dataclasses.field(default_factory=factory, metadata={"doc": text})


def field_doc(cls: type, name: str) -> str:
    """The documentation string of one field of a dataclass."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            valid = f.metadata.get("valid")
            return str(f.metadata.get("doc", "")) + (f" (valid: {valid.describe()})" if valid else "")
    raise KeyError(name)


_HINTS: dict[Any, dict[str, Any]] = {}


def _hints(cls: Any) -> dict[str, Any]:
    """``get_type_hints`` of a dataclass, resolved once per class (every variant of a sweep is built from dicts)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys and values of the wrong type."""
    if not isinstance(data, dict):
        raise ConfigError(where or cls.__name__, f"expected a mapping, got {_kind(data)}", "write key: value pairs")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # T is any dataclass: no bound says so
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise ConfigError(path, "unknown setting", _suggest(str(key), list(fields)))
        kwargs[key] = coerce(hints[key], value, path)
        if (valid := fields[key].metadata.get("valid")) is not None:
            valid.check(kwargs[key], path)
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}" if where else name, "is missing", f"add {name}")
    return cls(**kwargs)


def coerce(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against type ``tp`` (converting where lossless) or raise ConfigError."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _coerce_union(tp, value, path)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(path, f"{value!r} is not allowed", f"use one of {', '.join(map(repr, get_args(tp)))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {_kind(value)}", "write a YAML list: [a, b]")
        (item,) = get_args(tp)
        return [coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a mapping, got {_kind(value)}", "write key: value pairs")
        _, val_tp = get_args(tp)
        return {str(k): _coerce_entry(val_tp, str(k), v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)  # type: ignore[arg-type]  # is_dataclass narrows tp to an instance type
    return _coerce_scalar(tp, value, path)


def _coerce_entry(tp: Any, key: str, value: Any, path: str) -> Any:
    """One value of a mapping; when its key looks like a secret's, an error does not show the value."""
    try:
        return coerce(tp, value, path)
    except ConfigError as err:
        if not secret_names.is_secret(key):
            raise
        raise ConfigError(err.setting, "has a value of the wrong kind (not shown: the name looks like a secret's)",
                          f"remove it, export {key} in your shell and list it in profile.env_passthrough") from None


def _coerce_union(tp: Any, value: Any, path: str) -> Any:
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return coerce(arg, value, path)
        except ConfigError as err:
            errors.append(err)
    raise errors[0]


def _coerce_scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"expected true or false, got {shown(value)}", "write true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, f"expected an integer, got {shown(value)}", "write a whole number, e.g. 8")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            written = getattr(value, "text", "")
            if value == 0 and any(c in "123456789" for c in written.lower().split("e")[0]):
                raise ConfigError(path, f"{written[:40]} is too small for a number: it would be 0.0",
                                  "write a number within range (1e-300 or larger), or 0")
            try:
                return float(value)   # a plain float: the text a YAML float remembers is not kept
            except OverflowError:
                raise ConfigError(path, f"{str(value)[:20]}... is too large for a number",
                                  "write a number within range") from None
        raise ConfigError(path, f"expected a number, got {shown(value)}", "write a number, e.g. 1.0e-4")
    if tp is str:
        if isinstance(value, str) and shellsafe.has_control(value):
            raise ConfigError(path, f"{value[:80]!r} holds a line break or control character",
                              "write it on one line, without control characters")
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return str(value)   # the loader keeps 0123, 0x1F, 4:00:00 as text: an int here is decimal as written
        written = getattr(value, "text", None) if isinstance(value, float) else None
        if isinstance(written, str) and written:
            return written   # spec.yamltext's float: the text as written (1.50 stays 1.50)
        raise ConfigError(path, f"expected a string, got {_kind(value)} {shown(value)}",
                          f"quote it to keep the text as written, e.g. {path.rsplit('.', 1)[-1]}: \"...\"")
    if tp is Any:
        return value
    raise TypeError(f"unsupported field type {tp!r} at {path}")


def to_dict(obj: Any) -> Any:
    """Plain data (for YAML/JSON) from a dataclass tree."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else obj


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge two mappings: ``over`` wins; nested mappings merge key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested mapping, creating intermediate mappings. A mapping given for a group of settings
    (``training={lr: 1e-4}``) merges into it: the group's other settings keep their values, as with ``extends:``."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(dotted, f"{part} is not a group of settings", "override a leaf setting")
    node[leaf] = merge(node[leaf], value) if isinstance(value, dict) and isinstance(node.get(leaf), dict) else value


def _suggest(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1)
    return f"did you mean {close[0]!r}?" if close else f"valid settings: {', '.join(names)}"


def shown(value: Any) -> str:
    """A value as an error line shows it: its repr, cut to 60 characters with its length said."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}... ({len(text)} characters)"


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing"


__all__ = ["ConfigError", "Valid", "coerce", "doc", "field_doc", "from_dict", "merge", "nested", "set_path", "shown",
           "to_dict", "valid_of"]
