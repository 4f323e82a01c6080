"""YAML that keeps text as written, and one-line errors for files that cannot be read.

PyYAML follows YAML 1.1: ``4:00:00`` is the integer 14400 (sexagesimal), ``0123`` is 83 (octal), ``0x1F`` is 31,
``no`` is false and ``2026-01-01`` a date. Profiles, recipes, sweeps and ``--set`` load with ``TextLoader``
instead: only decimal integers (``-?(0|[1-9][0-9]*)``), decimal floats with a point or an exponent, ``true`` /
``false`` and ``null`` are typed; everything else stays the string as written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .schema import ConfigError

_TYPED = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}


class TextLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's implicit sexagesimal, octal, hex, yes/no/on/off and timestamps."""


TextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _TYPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
TextLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
TextLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^-?(?:0|[1-9][0-9]{0,17})$"),
                                 list("-0123456789"))   # at most 18 digits: a longer number stays text, refused as such
TextLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^-?(?:[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)$"),
    list("-0123456789."))


class WrittenFloat(float):
    """A YAML float that remembers its text, so a string field given ``1.50`` keeps ``1.50``."""

    text: str = ""


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    value = WrittenFloat(yaml.SafeLoader.construct_yaml_float(loader, node))
    value.text = str(node.value)
    return value


TextLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


class TooDeep(yaml.YAMLError):
    """YAML nested deeper than Python's recursion allows (``[[[[...]]]]``)."""


class TooBig(yaml.YAMLError):
    """YAML whose aliases expand to more values than any profile, recipe or sweep needs (a "billion laughs")."""


MAX_VALUES = 200_000
"""Values a YAML document may expand to, its aliases counted as often as they are used (the biggest shipped sweep
expands to a few hundred)."""


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values under ``node`` with every alias expanded, computed once per node (linear in the document)."""
    key = id(node)
    if key not in sizes:
        sizes[key] = 1   # a node that refers to itself counts once (recursion is refused by the constructor)
        if isinstance(node, yaml.SequenceNode):
            sizes[key] = 1 + sum(_expanded_size(child, sizes) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            sizes[key] = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    return sizes[key]


def _single_node(self: TextLoader) -> yaml.Node | None:
    node = yaml.SafeLoader.get_single_node(self)
    if node is not None and (size := _expanded_size(node, {})) > MAX_VALUES:
        raise TooBig(f"its aliases expand to {size:,} values (more than {MAX_VALUES:,})")
    return node


def _mapping(self: TextLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    """A mapping whose keys are written once each (merge keys ``<<`` may be overridden, as YAML says)."""
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        if key_node.value in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key_node.value!r} is written twice in one mapping", key_node.start_mark)
        seen.add(key_node.value)
    return yaml.SafeLoader.construct_mapping(self, node, deep)


TextLoader.get_single_node = _single_node  # type: ignore[method-assign,assignment]
TextLoader.construct_mapping = _mapping  # type: ignore[method-assign,assignment]


def loads(text: str) -> Any:
    """Parse YAML text with ``TextLoader``; nesting too deep to parse is a YAMLError (TooDeep)."""
    try:
        return yaml.load(text, Loader=TextLoader)   # noqa: S506  # TextLoader is a SafeLoader
    except RecursionError:
        raise TooDeep("nested too deeply") from None


def read_text(path: Path, what: str = "file") -> str:
    """A text file's contents, or a one-line ConfigError naming the file and why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), f"{what} does not exist", "check the path") from None
    except IsADirectoryError:
        raise ConfigError(str(path), f"is a directory, not a {what}", "give the path of a YAML file") from None
    except PermissionError:
        raise ConfigError(str(path), "cannot be read: permission denied",
                          f"make it readable (chmod u+r {path}) or use another file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(str(path), f"is not UTF-8 text (byte {err.start}): a binary file?",
                          "give a YAML text file") from None
    except OSError as err:
        raise ConfigError(str(path), f"cannot be read ({err.strerror or err})", "check the file") from None


def load_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping, with a one-line error for unreadable, malformed or empty files."""
    text = read_text(path, "YAML file")
    try:
        data = loads(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(str(path), f"is not valid YAML{where}: {problem}", "fix the file's syntax") from None
    if data is None:
        raise ConfigError(str(path), "is empty", "write its settings as key: value pairs")
    if not isinstance(data, dict):
        raise ConfigError(str(path), "top level is not a mapping", "write key: value pairs")
    return data


def parse_value(raw: str) -> Any:
    """A ``--set`` value: YAML with ``TextLoader`` (so ``4:00:00`` stays text); unparsable text stays as it is."""
    if not raw.strip():
        return ""
    try:
        return loads(raw)
    except TooDeep:
        raise ConfigError("--set", f"{raw[:40]!r}... is nested too deeply", "write a plain value") from None
    except yaml.YAMLError:
        return raw
