"""Files the server may send: a trial's own files and the experiment's logs, and nothing else.

A name is one plain file name (no separator, no ``..``, no NUL, not absolute); the folder it is
looked up in must itself resolve inside the experiment directory (a trial directory replaced by
a symlink to ``/etc`` is refused), and so must the file (a symlink inside pointing out is
refused too).  The caller gets a real path it may open, or :class:`FileRefused`.
"""
from __future__ import annotations

from pathlib import Path


class FileRefused(LookupError):
    """No such file here (or one the server must not send); the message says which."""


def _plain_name(name: str, what: str) -> str:
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name
            or name.startswith("~")):
        raise FileRefused(f"{what} {name!r} is not a plain file name")
    return name


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def safe_file(exp_dir: str | Path, folder: str | Path, name: str, what: str = "file") -> Path:
    """The real path of ``exp_dir/folder/name`` if it is a regular file inside ``exp_dir``."""
    root = Path(exp_dir).resolve()
    base = (root / folder).resolve()
    if not _inside(base, root):
        raise FileRefused(f"{what} {name!r}: its folder is outside the experiment directory")
    path = (base / _plain_name(name, what)).resolve()
    if path.parent != base or not _inside(path, root) or not path.is_file():
        raise FileRefused(f"there is no {what} {name!r}")
    return path
