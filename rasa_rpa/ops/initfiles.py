"""How ``rasa-rpa init`` reads and writes a project it does not trust.

init runs in folders it did not make, and a folder can hold anything: a
domain.yml that is a symlink to another project's, a robots/ link to a
folder elsewhere, a data file that is a directory, a FIFO that never ends,
a link to /dev/zero, YAML aliases that expand to gigabytes. So every file is
read only if it is a regular file of a sane size, YAML only with few aliases,
and every planned write is checked (it lands inside the project, its target
is a file or absent, its folders can be made) before the first byte is
written: init either does all of its change or none of it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from rasa_rpa.ops.yamledit import YamlEditError, check_aliases

__all__ = ["MAX_BYTES", "InitError", "check_targets", "read_text"]

#: The most init reads of one file. A real domain is far smaller; a bigger
#: file is a mistake or an attack, and parsing it would take minutes and GBs.
MAX_BYTES = 5 * 1024 * 1024


class InitError(Exception):
    """The folder is not something init can work on; the message says why."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_text(path: Path, name: str) -> str | None:
    """``path``'s text, or None if there is no such file.

    Raises:
        InitError: ``path`` (or what its link points at) is not a regular
            file, is over :data:`MAX_BYTES`, is not UTF-8, cannot be read,
            or is YAML with more aliases than a real Rasa file has.
    """
    try:
        info = path.stat()  # follows links: what would be read
    except (FileNotFoundError, NotADirectoryError):
        return None  # a write there is checked by check_targets
    except OSError as exc:
        raise InitError(f"{name}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise InitError(f"{name} is {_kind(info.st_mode)}, where a file belongs")
    if info.st_size > MAX_BYTES:
        raise InitError(
            f"{name} is {info.st_size // 1024 // 1024} MB: init reads files of "
            f"at most {MAX_BYTES // 1024 // 1024} MB"
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InitError(f"{name}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_BYTES:  # it grew since stat
        raise InitError(f"{name}: init reads files of at most {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InitError(f"{name} is not UTF-8 text") from None
    if path.suffix in (".yml", ".yaml"):
        try:
            check_aliases(text)
        except YamlEditError as exc:
            raise InitError(f"{name}: {exc}") from None
    return text


def check_targets(
    root: Path,
    paths: Iterable[Path],
    allowed: set[Path],
    name: Callable[[Path], str],
) -> None:
    """Refuse the whole run if any of ``paths`` cannot or must not be written.

    A path whose resolved location is outside ``root`` (through a symlink,
    dangling ones included) is refused unless it is in ``allowed``: what
    rpa.yml or --config point outside on purpose.

    Raises:
        InitError: one line naming the file and what is wrong with it.
    """
    for path in paths:
        real = path.resolve()
        if path not in allowed and not real.is_relative_to(root):
            link = _link(root, path)
            via = f" (init would write {name(path)} there)" if link != path else ""
            raise InitError(
                f"{name(link)} points outside the project, to {link.resolve()}"
                f"{via}: init writes only inside it. Replace the link with a "
                "file or folder of the project, or remove it"
            )
        try:
            info = real.stat()
        except (FileNotFoundError, NotADirectoryError):
            _check_folders(path, real, name)
            continue
        except OSError as exc:
            raise InitError(f"{name(path)}: cannot use it ({exc.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            raise InitError(
                f"{name(path)} is {_kind(info.st_mode)}, where init writes a file"
            )
        if not os.access(real, os.W_OK):
            raise InitError(f"{name(path)} is not writable")


def _link(root: Path, path: Path) -> Path:
    """The link in ``path`` that leads out of ``root``: what the user must fix."""
    for part in [*reversed(path.parents), path]:
        if part.is_relative_to(root) and part != root and part.is_symlink():
            if not part.resolve().is_relative_to(root):
                return part
    return path


def _check_folders(path: Path, real: Path, name: Callable[[Path], str]) -> None:
    """The folders of a new file: the nearest existing one must be a writable dir."""
    for folder in real.parents:
        if folder.is_dir():
            if not os.access(folder, os.W_OK | os.X_OK):
                raise InitError(f"{name(folder)}: cannot create {name(path)} there")
            return
        if os.path.lexists(folder):
            raise InitError(
                f"{name(folder)} is a file, where init needs a folder for {name(path)}"
            )
