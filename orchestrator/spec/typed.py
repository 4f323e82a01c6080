"""Typed conversion between plain YAML data and dataclasses.

One place checks every key and every value against the dataclass field types, so a typo in a profile, a recipe
or a ``--set`` override is reported as one line that names the setting and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class ConfigError(ValueError):
    """Invalid configuration input; ``str(err)`` is one line naming the setting and the fix."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting, self.problem, self.fix = setting, problem, fix
        super().__init__(f"{setting}: {problem} (fix: {fix})")


def doc(default: Any, text: str) -> Any:
    """A dataclass field with a default and a one-line documentation string, kept at runtime."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"doc": text})
    return dataclasses.field(default=default, metadata={"doc": text})


def nested(factory: Any, text: str) -> Any:
    """A dataclass field holding another dataclass, with its documentation string."""
    return dataclasses.field(default_factory=factory, metadata={"doc": text})


def field_doc(cls: type, name: str) -> str:
    """The documentation string of one field of a dataclass."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return str(f.metadata.get("doc", ""))
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
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]  # T is any dataclass: no bound says so
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise ConfigError(path, "unknown setting", _suggest(str(key), names))
        kwargs[key] = coerce(hints[key], value, path)
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
        return {str(k): coerce(val_tp, v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)  # type: ignore[arg-type]  # is_dataclass narrows tp to an instance type
    return _coerce_scalar(tp, value, path)


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
        raise ConfigError(path, f"expected true or false, got {value!r}", "write true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, f"expected an integer, got {value!r}", "write a whole number, e.g. 8")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(path, f"expected a number, got {value!r}", "write a number, e.g. 1.0e-4")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(path, f"expected a string, got {_kind(value)}", "write a plain string")
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
    """Set ``a.b.c`` in a nested mapping, creating intermediate mappings."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(dotted, f"{part} is not a group of settings", "override a leaf setting")
    node[leaf] = value


def _suggest(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1)
    return f"did you mean {close[0]!r}?" if close else f"valid settings: {', '.join(names)}"


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing"


__all__ = ["ConfigError", "coerce", "doc", "field_doc", "from_dict", "merge", "nested", "set_path", "to_dict"]
