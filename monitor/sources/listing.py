"""One read of a watch source: the watches it lists and its problems, and how a body becomes that.

CSV goes through `core.watchcsv` (problems counted once per file). A YAML watch list is a list
of {install_sid, exam_sid, session_sid, labels, interval} mappings, or a mapping holding one
under `watches:`; its problems are counted the same way, one line each, never echoing a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TextIO

import yaml

from monitor.core import durations, watchcsv
from monitor.core.keys import EXAM_SID, INSTALL_SID, SESSION_SID, SessionKey
from monitor.core.watches import NO_LABELS, Watch, shared_labels

__all__ = ["Format", "Listing", "parse"]

Format = Literal["csv", "yaml"]
_SIDS: Final = (("install_sid", INSTALL_SID), ("exam_sid", EXAM_SID), ("session_sid", SESSION_SID))
_KEYS: Final = frozenset({"install_sid", "exam_sid", "session_sid", "labels", "interval"})


@dataclass(frozen=True, slots=True)
class Listing:
    """What one read of a source found; `problems` are one line each, prefixed with where."""

    watches: Mapping[SessionKey, Watch] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def parse(text: str | TextIO, fmt: Format, *, name: str, where: str) -> Listing:
    """The watches in `text` (or an open file), each with source `name`; problems prefixed
    with `where`, if any."""
    if fmt == "csv":
        parsed = watchcsv.parse(text, name)
    else:
        parsed = _yaml(text if isinstance(text, str) else text.read(), name)
    prefix = f"{where}: " if where else ""
    return Listing(parsed.watches, tuple(f"{prefix}{line}" for line in parsed.problems))


def _yaml(text: str, name: str) -> watchcsv.Parsed:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return watchcsv.Parsed(problems=(f"not valid YAML{where}",))
    if isinstance(loaded, dict):
        loaded = loaded.get("watches")
    if not isinstance(loaded, list):
        return watchcsv.Parsed(problems=("expected a list of watches",))
    watches: dict[SessionKey, Watch] = {}
    tally: dict[str, list[int]] = {}  # problem -> [count, first item]
    for index, item in enumerate(loaded):
        found = _item(item, name)
        if isinstance(found, str):
            tally.setdefault(found, [0, index])[0] += 1
        else:
            watches.setdefault(found.key, found)
    return watchcsv.Parsed(watches, tuple(_told(what, *seen) for what, seen in tally.items()))


def _told(what: str, count: int, first: int) -> str:
    items = "1 item" if count == 1 else f"{count} items"
    return f"{items} with {what}, first item {first}"


def _item(item: object, name: str) -> Watch | str:
    """One YAML entry as a watch, or what is wrong with it (no value echoed)."""
    if not isinstance(item, dict):
        return "no mapping"
    unknown = sorted(str(key) for key in item if key not in _KEYS)
    if unknown:
        return f"an unknown key {unknown[0]}"
    sids = [item.get(column) for column, _ in _SIDS]
    for (column, rx), value in zip(_SIDS, sids, strict=True):
        if not isinstance(value, str) or not rx.fullmatch(value):
            return f"an invalid {column}"
    labels = item.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return "labels that are not a mapping of strings"
    try:
        interval = _interval(item.get("interval"))
    except ValueError:
        return "an invalid interval"
    shown = shared_labels({str(k): v for k, v in labels.items()}) if labels else NO_LABELS
    return Watch(SessionKey(*sids), shown, interval, name)  # type: ignore[arg-type]  # checked above


def _interval(value: Any) -> float | None:
    if value is None:
        return None
    seconds = durations.seconds(value) if isinstance(value, str) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise ValueError("not a positive duration")
    return float(seconds)
