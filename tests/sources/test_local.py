"""Local watch sources through the configuration: CSV problems once per file, the API's
spelling, directories of exports, YAML lists, and the `sources:` schema's one-line errors."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from monitor.settings import load_settings
from tests.settingskit import LOCAL, problems, write
from tests.sources.urlkit import EXAM, INSTALL, csv_of


def test_a_10000_row_csv_with_a_wrong_header_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "bio.csv").write_text(
        csv_of(*range(10_000), header="install,exam,session"), encoding="utf-8"
    )
    config = write(tmp_path / "c.yaml", {**LOCAL, "watch_files": ["exports/bio.csv"]})
    assert problems(config) == [
        "watch_files[0] (exports/bio.csv): no columns install_sid, exam_sid, session_sid "
        "(found: install, exam, session)"
    ]


async def test_check_config_on_that_file_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bio.csv").write_text(csv_of(*range(10_000), header="a,b"), encoding="utf-8")
    config = write(tmp_path / "c.yaml", {**LOCAL, "watch_files": ["bio.csv"]})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "check-config", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and out == b""
    assert err.decode().splitlines() == [
        "spmon: config error: watch_files[0] (bio.csv): no columns install_sid, exam_sid, "
        "session_sid (found: a, b)"
    ]


def test_the_apis_spelling_and_semicolons_are_a_watch_list(tmp_path: Path) -> None:
    text = csv_of(1, 2, header="installSid,examSid,sessionSid").replace(",", ";")
    (tmp_path / "api.csv").write_text(text, encoding="utf-8")
    s = load_settings(write(tmp_path / "c.yaml", {**LOCAL, "watch_files": ["api.csv"]}))
    assert [k.session_sid[-1] for k in s.listings()["file:api.csv"]] == ["1", "2"]
    assert list(s.listings()) == ["inline", "file:api.csv"]
    assert {w.source for w in s.listings()["file:api.csv"].values()} == {"file:api.csv"}


def test_a_directory_is_every_csv_in_name_order_and_names_each_bad_file(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "b.csv").write_text(csv_of(2, 1), encoding="utf-8")
    (exports / "a.csv").write_text(csv_of(3, header="install_sid,exam_sid,session_sid,course"))
    (exports / "notes.txt").write_text("not a watch list", encoding="utf-8")
    source = {"type": "dir", "path": "exports"}
    s = load_settings(write(tmp_path / "c.yaml", {**LOCAL, "sources": [source]}))
    assert [k.session_sid[-1] for k in s.listings()["dir:exports"]] == ["3", "2", "1"]
    (exports / "c.csv").write_text("a;b\n1;2\n", encoding="utf-8")
    assert problems(tmp_path / "c.yaml") == [
        "sources[0] (exports/c.csv): no columns install_sid, exam_sid, session_sid (found: a, b)"
    ]
    missing = write(tmp_path / "d.yaml", {**LOCAL, "sources": [{"type": "dir", "path": "gone"}]})
    assert problems(missing) == ["sources[0] (gone): cannot read (No such file or directory)"]


def test_a_session_in_two_sources_takes_the_first_ones_labels(tmp_path: Path) -> None:
    sid = {"install_sid": INSTALL, "exam_sid": EXAM, "session_sid": f"ES{1:032x}"}
    (tmp_path / "w.csv").write_text(
        csv_of(1, 2, header="install_sid,exam_sid,session_sid").replace("\n", ",x\n", 1)
    )
    data = {**LOCAL, "watches": [{**sid, "labels": {"from": "inline"}}], "watch_files": ["w.csv"]}
    s = load_settings(write(tmp_path / "c.yaml", data))
    listed = s.listings()
    assert [w.labels for w in listed["inline"].values()] == [{"from": "inline"}]
    assert [k.session_sid[-1] for k in listed["file:w.csv"]] == ["2"]


def test_yaml_watch_files_count_their_problems_once(tmp_path: Path) -> None:
    good = {"install_sid": INSTALL, "exam_sid": EXAM, "session_sid": "ES" + "c" * 32}
    items = [good, {**good, "session_sid": "ES1"}, {**good, "session_sid": "ES2"}, {"colour": 1}]
    write(tmp_path / "w.yaml", {"watches": items})
    assert problems(write(tmp_path / "c.yaml", {**LOCAL, "watch_files": ["w.yaml"]})) == [
        "watch_files[0] (w.yaml): 2 items with an invalid session_sid, first item 1",
        "watch_files[0] (w.yaml): 1 item with an unknown key colour, first item 3",
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"type": "url", "url": "http://lms.example/w.csv"}, "use https or set allow_http"),
        ({"type": "url", "url": "https://127.0.0.1/w.csv"}, "url is a loopback address"),
        ({"type": "url", "url": "https://u:p@lms.example/w"}, "must not carry credentials"),
        ({"type": "url", "url": "ftp://lms.example/w"}, "must be an https URL"),
        ({"type": "url", "url": "https://lms.example/w", "path": "x"}, "path do not apply"),
        ({"type": "file", "path": "w.csv", "allow_http": True}, "allow_http do not apply"),
        ({"type": "url"}, "a url source needs a url"),
        ({"type": "dir"}, "a dir source needs a path"),
        (
            {"type": "url", "url": "https://lms.example/w", "colour": 1},
            "sources[0].colour: unknown",
        ),
        ({"type": "ftp"}, "sources[0].type: Input should be 'file', 'dir' or 'url'"),
        (
            {"type": "url", "url": "https://lms.example/w", "auth_file": "nope"},
            "sources[0].auth_file: cannot read nope",
        ),
    ],
)
def test_each_bad_source_is_one_line_naming_the_key(
    tmp_path: Path, source: dict, expected: str
) -> None:
    lines = problems(write(tmp_path / "c.yaml", {**LOCAL, "sources": [source]}))
    assert len(lines) == 1 and expected in lines[0], lines


def test_a_source_configured_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_text(csv_of(1), encoding="utf-8")
    data = {**LOCAL, "watch_files": ["w.csv"], "sources": [{"type": "file", "path": "w.csv"}]}
    assert problems(write(tmp_path / "c.yaml", data)) == ["sources: file:w.csv is configured twice"]


def test_url_sources_are_named_without_their_query(tmp_path: Path) -> None:
    source = {"type": "url", "url": "https://lms.example/w.csv?sig=abc", "format": "yaml"}
    s = load_settings(write(tmp_path / "c.yaml", {**LOCAL, "sources": [source]}))
    assert s.source_names() == ["inline", "url:https://lms.example/w.csv"]
    assert list(s.listings()) == ["inline"]  # a URL is read by the service, not at load


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[unclosed", "w: not valid YAML at line 1"),
        ("just text", "w: expected a list of watches"),
        ("- 3", "w: 1 item with no mapping, first item 0"),
        (
            f"- {{install_sid: {INSTALL}, exam_sid: {EXAM}, session_sid: ES{'c' * 32}, labels: [x]}}",
            "w: 1 item with labels that are not a mapping of strings, first item 0",
        ),
        (
            f"- {{install_sid: {INSTALL}, exam_sid: {EXAM}, session_sid: ES{'c' * 32}, interval: -1}}",
            "w: 1 item with an invalid interval, first item 0",
        ),
    ],
)
def test_yaml_lists_name_what_is_wrong_once(text: str, expected: str) -> None:
    from monitor.sources import parse

    assert parse(text, "yaml", name="file:w", where="w").problems == (expected,)


def test_a_yaml_item_with_every_field(tmp_path: Path) -> None:
    from monitor.sources import parse

    text = f"watches:\n- {{install_sid: {INSTALL}, exam_sid: {EXAM}, session_sid: ES{'c' * 32}, labels: {{a: b}}, interval: 90}}"
    (watch,) = parse(text, "yaml", name="file:w", where="w").watches.values()
    assert (dict(watch.labels), watch.interval, watch.source) == ({"a": "b"}, 90.0, "file:w")


def test_the_first_listings_take_what_load_read_and_later_ones_read_again(tmp_path: Path) -> None:
    """Start-up reads each watch file once: load validates and counts it, and the first apply
    (the start's, a reload's) takes that listing; copies share it, and after it is taken every
    call reads the files as they are now."""
    (tmp_path / "w.csv").write_text(csv_of(1, 2), encoding="utf-8")
    loaded = load_settings(write(tmp_path / "c.yaml", {**LOCAL, "watch_files": ["w.csv"]}))
    copy = loaded.model_copy()
    (tmp_path / "w.csv").write_text(csv_of(3), encoding="utf-8")
    assert [k.session_sid[-1] for k in copy.listings()["file:w.csv"]] == ["1", "2"]
    assert [k.session_sid[-1] for k in loaded.listings()["file:w.csv"]] == ["3"]
    assert [k.session_sid[-1] for k in copy.listings()["file:w.csv"]] == ["3"]
    assert loaded.watch_count == 2  # as counted at load
