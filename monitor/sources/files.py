"""Watch sources on the local disk: one file (YAML or CSV), or a directory of CSV exports.

Read at start-up (and, later, on every reload) in full; a file that cannot be read is a problem
line like any other, so configuration checking names every bad file at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from monitor.core.keys import SessionKey
from monitor.core.watches import Watch
from monitor.sources.listing import Format, Listing, parse

__all__ = ["read_dir", "read_file"]


def read_file(path: Path, *, name: str, where: str) -> Listing:
    """The watches of one file: CSV when it ends in .csv, a YAML list otherwise."""
    fmt: Format = "csv" if path.suffix.lower() == ".csv" else "yaml"
    try:
        # Line by line: a 100,000-row export is never held whole.
        with path.open(encoding="utf-8-sig", newline="") as lines:
            return parse(lines, fmt, name=name, where=where)
    except (OSError, UnicodeDecodeError) as exc:
        return Listing(problems=(f"{where}: cannot read ({_reason(exc)})",))


def read_dir(path: Path, *, name: str, where: str, shown: str) -> Listing:
    """Every *.csv in `path`, in name order, as one source: a session in two files takes the
    first file's labels. `shown` is the directory as configured, for problem lines."""
    try:
        files = sorted(entry for entry in path.iterdir() if entry.suffix.lower() == ".csv")
    except OSError as exc:
        return Listing(problems=(f"{where} ({shown}): cannot read ({_reason(exc)})",))
    listings = [
        read_file(file, name=name, where=f"{where} ({shown.rstrip('/')}/{file.name})")
        for file in files
        if file.is_file()
    ]
    return Listing(_first_wins(listing.watches.values() for listing in listings), _all(listings))


def _first_wins(groups: Iterable[Iterable[Watch]]) -> dict[SessionKey, Watch]:
    watches: dict[SessionKey, Watch] = {}
    for group in groups:
        for watch in group:
            watches.setdefault(watch.key, watch)
    return watches


def _all(listings: Iterable[Listing]) -> tuple[str, ...]:
    return tuple(line for listing in listings for line in listing.problems)


def _reason(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return exc.strerror or str(exc)
