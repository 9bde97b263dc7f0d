"""Control characters made visible, for log lines and terminal tables.

A conversation id, a customer name or a robot's message is text someone
else chose. Written raw, a line feed in it forges a log line of its own
(``evil\\n... CRITICAL ... FORGED``), an ESC sequence recolours or rewrites
the operator's terminal, and a NUL breaks tools that read the log. Here
each such character becomes a visible escape (``\\n``, ``\\x1b``,
``\\u2028``), so a line stays one line and a terminal only shows text.
"""

from __future__ import annotations

__all__ = ["escape_controls"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: C0, DEL, C1, and the Unicode line and paragraph separators (some viewers
#: break lines on them).
_CONTROLS = [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]


def _escape(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TABLE = {code: _escape(code) for code in _CONTROLS}
#: Multi-line text (a traceback) keeps its line feeds and tabs.
_TABLE_MULTILINE = {k: v for k, v in _TABLE.items() if chr(k) not in "\n\t"}


def escape_controls(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control character written as an escape.

    A tab is escaped too unless ``multiline``: in a table it would shift
    the columns. With ``multiline``, line feeds and tabs stay as they are.
    """
    return text.translate(_TABLE_MULTILINE if multiline else _TABLE)
