"""A CSV watch list (an LMS or SmarterProctoring export) read into watches, problems named once.

A wrong header on a 10,000-row export must say so in one line, not 30,000 per-row pattern
errors; a header-less file must not silently eat its first session; a session listed twice
with other labels must not lose them without a word. So every problem is counted per file and
told once, on one line, with the first line it happened at. Lines never echo cell values
beyond a SID (which is no secret): an export may carry student data in its label columns.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Final

from monitor.core import durations
from monitor.core.keys import EXAM_SID, INSTALL_SID, SESSION_SID, SessionKey
from monitor.core.watches import NO_LABELS, Watch, shared_labels

if TYPE_CHECKING:
    from _csv import Reader as _Reader

__all__ = ["Parsed", "parse"]

_SIDS: Final = (("install_sid", INSTALL_SID), ("exam_sid", EXAM_SID), ("session_sid", SESSION_SID))
_INTERVAL: Final = "interval"
_DELIMITERS: Final = (",", ";", "\t")
_FOUND_SHOWN: Final = 12
"""Header cells listed in a missing-column line; a wide export must still give one short line."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """The watches a file lists (first listing wins), and its problems as one-line messages.

    Problems carry no file name: the caller prefixes where it read the file from."""

    watches: Mapping[SessionKey, Watch] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where each known column sits in a row; every other named column is a label."""

    sids: tuple[int, int, int]
    interval: int | None
    labels: tuple[tuple[int, str], ...]


@dataclass(slots=True)
class _Tally:
    """Rows that failed one check: how many, and the first line (and SID) it happened at."""

    count: int = 0
    first_line: int = 0
    detail: str = ""

    def add(self, line: int, detail: str = "") -> None:
        if not self.count:
            self.first_line, self.detail = line, detail
        self.count += 1


def parse(text: str | Iterable[str], name: str) -> Parsed:
    """Watches from CSV `text`, each with source `name` (e.g. "file:lms.csv").

    A header row is required; its columns are matched case-insensitively in snake_case
    (install_sid) or the API's spelling (installSid). The delimiter is sniffed among comma,
    semicolon and tab. Other columns become labels (empty cells dropped); an `interval` column
    overrides the poll interval (30s, 5m, or seconds). Rows with a bad SID or interval are left
    out and counted. `text` may also be its lines (an open file, newline=""): a 100,000-row
    export is then never held whole."""
    if isinstance(text, str):
        # A BOM left by a reader that did not use utf-8-sig.
        text = _lines(text.removeprefix("\ufeff"))
    lines = iter(text)
    first = next(lines, "")
    rows = csv.reader(chain((first,), lines), delimiter=_delimiter(first))
    try:
        return _read(rows, name)
    except csv.Error as exc:
        return Parsed(problems=(f"not a readable CSV file at line {rows.line_num} ({exc})",))


def _lines(text: str) -> Iterator[str]:
    """`text` line by line, ends kept, as csv wants them. Not io.StringIO: it holds four bytes
    per character, 40 MB for a 10 MB export. Old Mac files end lines with a lone CR."""
    end_of_line = "\n" if "\n" in text or "\r" not in text else "\r"
    start = 0
    while start < len(text):
        end = text.find(end_of_line, start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _delimiter(first: str) -> str:
    """The candidate that splits the first line into the most cells; a comma when none does."""
    best = max(_DELIMITERS, key=first.count)
    return best if first.count(best) else ","


def _read(rows: _Reader, name: str) -> Parsed:
    header = next((row for row in rows if any(cell.strip() for cell in row)), None)
    if header is None:
        return Parsed()
    if any(rx.fullmatch(cell.strip()) for cell in header for _, rx in _SIDS):
        return Parsed(problems=("no header row: the first line looks like a session",))
    columns = _columns(header)
    if isinstance(columns, str):
        return Parsed(problems=(columns,))
    return _Rows(columns, name).read(rows)


def _columns(header: Sequence[str]) -> _Columns | str:
    """Where each known column is, or the one line saying which are missing."""
    found = {_normal(cell): index for index, cell in reversed(list(enumerate(header)))}
    missing = [sid for sid, _ in _SIDS if _normal(sid) not in found]
    if missing:
        shown = [cell.strip() for cell in header[:_FOUND_SHOWN]]
        more = ", …" if len(header) > _FOUND_SHOWN else ""
        noun = "column" if len(missing) == 1 else "columns"
        return f"no {noun} {', '.join(missing)} (found: {', '.join(shown)}{more})"
    known = {found[_normal(sid)] for sid, _ in _SIDS}
    interval = found.get(_INTERVAL)
    labels = tuple(
        (index, sys.intern(cell.strip()))
        for index, cell in enumerate(header)
        if cell.strip() and index not in known and index != interval
    )
    install, exam, session = (found[_normal(sid)] for sid, _ in _SIDS)
    return _Columns(sids=(install, exam, session), interval=interval, labels=labels)


def _normal(cell: str) -> str:
    """installSid, install_sid, "Install SID" and INSTALL-SID all name one column."""
    return "".join(ch for ch in cell.casefold() if ch not in "_- \t")


class _Rows:
    """One pass over the data rows: watches kept, problems tallied."""

    __slots__ = (
        "_bad",
        "_columns",
        "_conflicting",
        "_conflicts",
        "_interval",
        "_lines",
        "_name",
        "_watches",
    )

    def __init__(self, columns: _Columns, name: str) -> None:
        self._columns, self._name = columns, name
        self._watches: dict[SessionKey, Watch] = {}
        self._lines: dict[SessionKey, int] = {}
        self._bad = {sid: _Tally() for sid, _ in _SIDS}
        self._interval = _Tally()
        self._conflicts = _Tally()
        self._conflicting: set[SessionKey] = set()

    def read(self, rows: _Reader) -> Parsed:
        for row in rows:
            if any(cell.strip() for cell in row):
                self._row(row, rows.line_num)
        return Parsed(watches=self._watches, problems=self._problems())

    def _row(self, row: Sequence[str], line: int) -> None:
        cells = [_cell(row, index) for index in self._columns.sids]
        bad = [sid for (sid, rx), cell in zip(_SIDS, cells, strict=True) if not rx.fullmatch(cell)]
        for sid in bad:
            self._bad[sid].add(line)
        try:
            interval = _override(_cell(row, self._columns.interval))
        except ValueError:
            self._interval.add(line)
            return
        if bad:
            return
        # A few installs and exams hold 100,000 sessions: one copy of each of their SIDs.
        key = SessionKey(sys.intern(cells[0]), sys.intern(cells[1]), cells[2])
        watch = Watch(key, _labels(row, self._columns.labels), interval, self._name)
        held = self._watches.setdefault(key, watch)
        if held is watch:
            self._lines[key] = line
        elif held != watch and key not in self._conflicting:
            self._conflicting.add(key)
            self._conflicts.add(line, f"{key.session_sid} at lines {self._lines[key]} and {line}")

    def _problems(self) -> tuple[str, ...]:
        lines = [
            f"{_rows(tally.count)} with an invalid {column}, first at line {tally.first_line}"
            for column, tally in (*self._bad.items(), (_INTERVAL, self._interval))
            if tally.count
        ]
        if self._conflicts.count:
            count = self._conflicts.count
            sessions = "1 session" if count == 1 else f"{count} sessions"
            lines.append(
                f"{sessions} listed more than once with different labels or interval, "
                f"first {self._conflicts.detail}"
            )
        return tuple(lines)


def _cell(row: Sequence[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _override(cell: str) -> float | None:
    """A row's poll interval; None when its cell is empty, ValueError unless it is positive."""
    if not cell:
        return None
    value = durations.seconds(cell)
    if value <= 0:
        raise ValueError("not positive")
    return value


def _labels(row: Sequence[str], columns: tuple[tuple[int, str], ...]) -> Mapping[str, str]:
    labels = {key: value for index, key in columns if (value := _cell(row, index))}
    return shared_labels(labels) if labels else NO_LABELS


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count} rows"
