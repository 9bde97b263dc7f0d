"""Adding entries to a user's YAML file without touching what is already there.

``rasa-rpa init`` edits the bot's own domain.yml, endpoints.yml and data
files. A re-dump, even a round-trip one, re-indents the user's lines (Rasa's
own templates mix two sequence styles in one file), so the new entries are
inserted as text at the end of their section instead: every existing byte
stays, and ``--dry-run`` shows pure additions. ruamel.yaml's round-trip
loader says where each section starts and ends, and renders the new entries.

The result is parsed again and compared with what was meant. Where text
insertion cannot be trusted (a flow-style ``[a, b]`` section, a block scalar
that ends in a ``#`` line), it falls back to a ruamel.yaml round trip, which
keeps comments and content but may re-indent.
"""

from __future__ import annotations

import io
import re
import textwrap
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelError

__all__ = [
    "MAX_ALIASES",
    "Additions",
    "YamlEditError",
    "add_entries",
    "check_aliases",
    "dump",
    "load",
]

#: Top-level key -> new list items, or new ``{key: value}`` entries of a map.
Additions = dict[str, list[Any] | dict[str, Any]]
_DASH = re.compile(r"^(\s*)-(\s+)")
#: The most ``*alias`` references a file may hold. Rasa's files seldom use
#: any; a few dozen nested ones (billion laughs) expand to gigabytes once the
#: data is walked or compared.
MAX_ALIASES = 50


class YamlEditError(ValueError):
    """The file is not YAML, or not the mapping a Rasa file is."""


class _Unsupported(Exception):
    """Text insertion does not fit this file; a round trip will."""


def _yaml() -> YAML:
    parser = YAML()  # round-trip: comments, order and quotes survive
    parser.preserve_quotes = True
    parser.indent(mapping=2, sequence=4, offset=2)
    parser.width = 4096  # never fold a long response text
    return parser


def check_aliases(text: str) -> None:
    """Refuse YAML with more than :data:`MAX_ALIASES` aliases, before loading it.

    The parser's events are read one by one, so an alias is counted where it
    stands, never expanded.
    """
    count = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                count += 1
                if count > MAX_ALIASES:
                    raise YamlEditError(
                        f"more than {MAX_ALIASES} YAML aliases (*name): refused, "
                        "as they can expand to gigabytes; write the entries out"
                    )
    except yaml.YAMLError as exc:
        raise YamlEditError(f"not valid YAML ({exc})") from None


def load(text: str) -> Any:
    """``text`` parsed by the round-trip loader (None for an empty file)."""
    try:
        return _yaml().load(text)
    except RuamelError as exc:
        raise YamlEditError(f"not valid YAML ({exc})") from None


def dump(data: Any) -> str:
    """``data`` as block YAML, the way new entries are written."""
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def add_entries(text: str, additions: Additions, note: str = "") -> str:
    """``text`` with each addition appended to its top-level section.

    A missing section is added at the end of the file. ``note``, if given,
    becomes a comment above each group of new entries, so a reader sees whose
    they are. Keys and items already present are the caller's to leave out:
    this only adds.
    """
    additions = {key: new for key, new in additions.items() if new}
    if not additions:
        return text
    check_aliases(text)
    wanted = _merged(_plain(text), additions)
    try:
        result = _insert(text, additions, f"# {note}\n" if note else "")
        if _plain(result) == wanted:
            return result
    except _Unsupported:
        pass
    result = _round_trip(text, additions)
    if _plain(result) != wanted:  # pragma: no cover - a ruamel.yaml bug
        raise YamlEditError("could not add the entries without changing others")
    return result


def _plain(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise YamlEditError(f"not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise YamlEditError("the top level is not a mapping of keys")
    return data


def _merged(data: dict[str, Any], additions: Additions) -> dict[str, Any]:
    """``data`` as it should read once ``additions`` are in."""
    merged = dict(data)
    for key, new in additions.items():
        old: Any = merged.get(key)
        if isinstance(new, list) and isinstance(old, list | None):
            merged[key] = [*(old or []), *new]
        elif isinstance(new, dict) and isinstance(old, dict | None):
            merged[key] = {**(old or {}), **new}
        else:
            kind = "list" if isinstance(new, list) else "mapping"
            raise YamlEditError(f"{key}: is {old!r}, where a {kind} belongs")
    return merged


def _insert(text: str, additions: Additions, note: str) -> str:
    data = load(text)
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise _Unsupported
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    starts = sorted(data.lc.key(key)[0] for key in data)
    inserts: list[tuple[int, list[str]]] = []
    appended: list[str] = []
    for key, new in additions.items():
        if key not in data:
            appended += ["\n", note, f"{key}:\n", *_indented(new, "  ")]
            continue
        if data[key] is None:
            index, indent = data.lc.key(key)[0], "  "
            if not re.match(rf"^{re.escape(key)}:\s*(#.*)?$", lines[index].rstrip()):
                raise _Unsupported
            index += 1
        else:
            index, indent = _section_end(lines, data, key, new, starts)
        head = [indent + note] if note else []
        inserts.append((index, [*head, *_indented(new, indent)]))
    for index, new_lines in sorted(inserts, key=lambda item: item[0], reverse=True):
        lines[index:index] = new_lines
    if appended and not lines:
        appended = appended[1:]  # no blank line at the top of a new file
    return "".join([*lines, *appended])


def _section_end(
    lines: list[str], data: CommentedMap, key: str, new: Any, starts: list[int]
) -> tuple[int, str]:
    """Where the new entries of ``key`` go (after its last one), and their indent."""
    value = data[key]
    if isinstance(new, list) and isinstance(value, CommentedSeq) and value:
        first, last = value.lc.item(0)[0], value.lc.item(len(value) - 1)[0]
        match = _DASH.match(lines[first])
        if match is None:
            raise _Unsupported
        indent = match.group(1)
    elif isinstance(new, dict) and isinstance(value, CommentedMap) and value:
        keys = list(value)
        first, last = value.lc.key(keys[0])[0], value.lc.key(keys[-1])[0]
        indent = " " * value.lc.key(keys[0])[1]
    else:
        raise _Unsupported  # a scalar, an empty [] or {}, or another type
    if value.fa.flow_style() or lines[first].lstrip().startswith(("[", "{")):
        raise _Unsupported
    start = data.lc.key(key)[0]
    end = next((line for line in starts if line > start), len(lines))
    # Blank lines and comments between sections belong to the next one. A
    # deeper "#" line may be the text of a block scalar: it stays before.
    while end - 1 > last and _between(lines[end - 1], len(indent)):
        end -= 1
    return end, indent


def _between(line: str, indent: int) -> bool:
    """A blank line, or a comment no deeper than the section's entries."""
    stripped = line.lstrip()
    return not stripped or (
        stripped.startswith("#") and len(line) - len(stripped) <= indent
    )


def _indented(new: Any, indent: str) -> list[str]:
    """``new`` rendered as block YAML, every line shifted right by ``indent``."""
    body = textwrap.dedent(dump(new)).splitlines(keepends=True)
    return [f"{indent}{line}" if line.strip() else line for line in body]


def _round_trip(text: str, additions: Additions) -> str:
    data = load(text)
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise YamlEditError("the top level is not a mapping of keys")
    for key, new in additions.items():
        value = data.get(key)
        if value is None:
            data[key] = new
        elif isinstance(new, list) and isinstance(value, list):
            value.extend(new)
        elif isinstance(new, dict) and isinstance(value, dict):
            value.update(new)
        else:
            kind = type(value).__name__
            raise YamlEditError(f"{key}: is a {kind}, not a list or a mapping")
    return dump(data)
