"""The state file as a file: created whole, checked before SQLite touches it, locked by itself.

- A new state file appears complete or not at all (built aside, then hard-linked into place),
  so an existing empty file is never a store being born: it is a truncated one, and taking it
  as fresh would drop the alerts it held.
- The single-instance lock is `flock` on the database file itself, so a second path to it
  (a symlink, a hard link) or a deleted side file cannot let a second writer in. Linux flock
  locks and the POSIX (fcntl) locks SQLite takes do not interact on a local filesystem; on
  NFS the kernel emulates flock with POSIX locks, but SQLite in WAL mode is unsupported there.
- The descriptor holding the lock is closed only after SQLite has closed the database:
  closing any descriptor of a file drops the process's POSIX locks on it, SQLite's included
  (which is also why a process opens one state file once).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path

from monitor.store.base import StateFileError, StoreLocked

__all__ = ["check_schema", "create", "describe", "open_locked", "resolve"]

_MAGIC = b"SQLite format 3\x00"
_TABLES = frozenset({"session", "outbox", "meta"})
_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)
EMPTY = (
    "is empty; it may have been truncated. Restore it from a backup, or delete it to start "
    "afresh (every session is re-baselined)"
)
NOT_SQLITE = (
    "is not an SQLite database (corrupt, or some other file). Restore it from a backup, or "
    "move it aside to start afresh (every session is re-baselined)"
)


def resolve(path: Path) -> Path:
    """The real file behind `path` (symlinks followed), its directory created if missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateFileError(path, f"its directory cannot be made: {describe(exc)}") from None
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13)
        raise StateFileError(path, describe(exc)) from None
    if real.is_dir():
        raise StateFileError(path, "is a directory, not a file")
    if not os.access(real.parent, os.W_OK | os.X_OK):
        raise StateFileError(
            path, f"its directory {real.parent} is read-only (SQLite writes -wal and -shm there)"
        )
    return real


def create(path: Path, real: Path, initialise: Callable[[sqlite3.Connection], object]) -> None:
    """Build a fresh store beside `real` and link it into place, unless one appears first."""
    scratch = real.with_name(f".{real.name}.{secrets.token_hex(4)}.new")
    try:
        db = sqlite3.connect(scratch, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            initialise(db)
        finally:
            db.close()
        _fsync(scratch)
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(scratch, real)
        _fsync(real.parent)
    except (OSError, sqlite3.Error) as exc:
        raise StateFileError(path, f"cannot be created: {describe(exc)}") from None
    finally:
        scratch.unlink(missing_ok=True)


def open_locked(path: Path, real: Path, *, lock: bool) -> int:
    """A descriptor of the database file, checked to look like SQLite and, with `lock`,
    exclusively flock-ed (StoreLocked when another process holds it)."""
    try:
        fd = os.open(real, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        reason = "is read-only (spmon must write to it)" if exc.errno in _READ_ONLY else None
        raise StateFileError(path, reason or describe(exc)) from None
    try:
        if lock:
            _lock(path, fd)
        _check_header(path, fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_header(path: Path, fd: int) -> None:
    header = os.pread(fd, 100, 0)
    if not header:
        raise StateFileError(path, EMPTY)
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise StateFileError(path, NOT_SQLITE)
    # The header's page count is current when its "valid for" matches the change counter
    # (sqlite.org/fileformat.html, 1.3): a file shorter than that lost its tail, and SQLite
    # would only notice after writing to it.
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages, counter, valid_for = (int.from_bytes(header[i : i + 4], "big") for i in (28, 24, 92))
    size = os.fstat(fd).st_size
    if counter == valid_for and pages * page_size > size:
        raise StateFileError(
            path,
            f"is truncated ({size} of {pages * page_size} bytes). Restore it from a backup, or "
            "move it aside to start afresh (every session is re-baselined)",
        )


def check_schema(path: Path, db: sqlite3.Connection, known: int) -> None:
    """Refuse a database spmon did not write, or one a newer spmon did; reads only."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version > known:
        raise StateFileError(
            path,
            f"was written by a newer spmon (schema {version}; this build knows up to {known}); "
            "run that version, or restore a backup this version wrote",
        )
    # An SQLite file with no tables at all holds nothing to lose: it becomes a fresh store.
    if tables and not (version > 0 and tables >= _TABLES):
        listed = ", ".join(sorted(tables)[:5])
        raise StateFileError(
            path, f"is an SQLite database but not a spmon state file (tables: {listed})"
        )


def _lock(path: Path, fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StoreLocked(
            path,
            f"in use by another spmon process (pid {_holder(fd)}); "
            "two pollers on one state would alert twice",
        ) from None


def _holder(fd: int) -> str:
    """The pid holding a flock on `fd`'s file, from /proc/locks (best effort)."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with contextlib.suppress(OSError), open("/proc/locks", encoding="ascii") as locks:
        for line in locks:
            fields = line.split()
            if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == inode:
                return fields[4]
    return "unknown"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe(exc: BaseException) -> str:
    """An OS or SQLite error as a reason: its message, without the errno and path."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)
