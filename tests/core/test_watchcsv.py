"""CSV watch lists: columns in either spelling, delimiters sniffed, every problem told once."""

from __future__ import annotations

import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st

from monitor.core import durations, watchcsv
from monitor.core.keys import SessionKey
from monitor.core.watches import Watch

INS, EXM = "AI" + "a" * 32, "EX" + "b" * 32
S1, S2, S3 = ("ES" + c * 32 for c in "123")
NAME = "file:lms.csv"


def keys(parsed: watchcsv.Parsed) -> list[str]:
    return [key.session_sid for key in parsed.watches]


def test_snake_case_header_with_labels_and_interval() -> None:
    text = (
        "install_sid,exam_sid,session_sid,course,term,interval\n"
        f"{INS},{EXM},{S1},BIO101,fall,30s\n"
        f" {INS} , {EXM} ,{S2}, CHEM201 ,,\n"
    )
    parsed = watchcsv.parse(text, NAME)
    assert parsed.problems == ()
    assert list(parsed.watches.values()) == [
        Watch(SessionKey(INS, EXM, S1), {"course": "BIO101", "term": "fall"}, 30.0, NAME),
        Watch(SessionKey(INS, EXM, S2), {"course": "CHEM201"}, None, NAME),  # empty cells dropped
    ]


@pytest.mark.parametrize(
    "header",
    [
        "installSid,examSid,sessionSid",
        "INSTALL_SID,Exam_Sid,sessionsid",
        "Install SID,Exam SID,Session SID",
    ],
)
def test_the_apis_spelling_and_any_case_name_the_same_columns(header: str) -> None:
    parsed = watchcsv.parse(f"{header},Course\n{INS},{EXM},{S1},BIO\n", NAME)
    assert parsed.problems == ()
    assert parsed.watches[SessionKey(INS, EXM, S1)].labels == {"Course": "BIO"}


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_delimiters_are_sniffed(delimiter: str) -> None:
    rows = [["install_sid", "exam_sid", "session_sid", "course"], [INS, EXM, S1, "BIO, part 1"]]
    text = "\n".join(delimiter.join(row) for row in rows) + "\n"
    if delimiter == ",":
        text = text.replace("BIO, part 1", '"BIO, part 1"')
    parsed = watchcsv.parse(text, NAME)
    assert parsed.problems == ()
    assert parsed.watches[SessionKey(INS, EXM, S1)].labels == {"course": "BIO, part 1"}


def test_a_bom_crlf_and_blank_rows_are_no_problem() -> None:
    text = f"\ufeffinstall_sid,exam_sid,session_sid\r\n\r\n{INS},{EXM},{S1}\r\n,,\r\n{INS},{EXM},{S2}\r\n"
    parsed = watchcsv.parse(text, NAME)
    assert parsed.problems == ()
    assert keys(parsed) == [S1, S2]


def test_a_header_less_file_is_one_problem_and_no_session_eaten_silently() -> None:
    parsed = watchcsv.parse(f"{INS},{EXM},{S1}\n{INS},{EXM},{S2}\n", NAME)
    assert parsed.problems == ("no header row: the first line looks like a session",)
    assert not parsed.watches


def test_a_wrong_header_on_10000_rows_is_one_line_naming_missing_and_found() -> None:
    text = "install,exam,session_sid,course\n" + f"{INS},{EXM},{S1},BIO\n" * 10_000
    parsed = watchcsv.parse(text, NAME)
    assert parsed.problems == (
        "no columns install_sid, exam_sid (found: install, exam, session_sid, course)",
    )
    assert not parsed.watches


def test_one_missing_column_and_a_wide_header_stay_short() -> None:
    header = ",".join(["install_sid", "exam_sid", *(f"c{n}" for n in range(40))])
    (line,) = watchcsv.parse(header + "\n", NAME).problems
    assert line.startswith("no column session_sid (found: install_sid, exam_sid, c0,")
    assert line.endswith("c9, …)")


def test_bad_sids_are_counted_per_column_with_the_first_line() -> None:
    good = f"{INS},{EXM},{S1}\n"
    text = (
        "install_sid,exam_sid,session_sid\n" + good + f"{INS},{EXM},ESnope\n" * 12 + f"AIx,{EXM},\n"
    )
    parsed = watchcsv.parse(text, NAME)
    assert parsed.problems == (
        "1 row with an invalid install_sid, first at line 15",
        "13 rows with an invalid session_sid, first at line 3",
    )
    assert keys(parsed) == [S1]


def test_bad_intervals_are_counted() -> None:
    text = f"install_sid,exam_sid,session_sid,interval\n{INS},{EXM},{S1},soon\n{INS},{EXM},{S2},0\n"
    parsed = watchcsv.parse(text, NAME)
    assert parsed.problems == ("2 rows with an invalid interval, first at line 2",)
    assert not parsed.watches


def test_identical_duplicates_are_silently_one() -> None:
    row = f"{INS},{EXM},{S1},BIO\n"
    parsed = watchcsv.parse("install_sid,exam_sid,session_sid,course\n" + row * 3, NAME)
    assert parsed.problems == ()
    assert keys(parsed) == [S1]


def test_conflicting_duplicates_are_one_line_and_the_first_listing_wins() -> None:
    text = (
        "install_sid,exam_sid,session_sid,course,interval\n"
        f"{INS},{EXM},{S1},BIO,\n"
        f"{INS},{EXM},{S2},BIO,\n"
        f"{INS},{EXM},{S1},CHEM,\n"
        f"{INS},{EXM},{S1},PHYS,\n"
        f"{INS},{EXM},{S2},BIO,5m\n"
        f"{INS},{EXM},{S3},BIO,\n"
    )
    parsed = watchcsv.parse(text, NAME)
    assert parsed.problems == (
        f"2 sessions listed more than once with different labels or interval, "
        f"first {S1} at lines 2 and 4",
    )
    assert parsed.watches[SessionKey(INS, EXM, S1)].labels == {"course": "BIO"}
    assert parsed.watches[SessionKey(INS, EXM, S2)].interval is None


def test_line_numbers_count_physical_lines() -> None:
    text = (
        f'install_sid,exam_sid,session_sid,note\n{INS},{EXM},{S1},"two\nlines"\n{INS},{EXM},ESx,\n'
    )
    assert watchcsv.parse(text, NAME).problems == (
        "1 row with an invalid session_sid, first at line 4",
    )


def test_short_rows_and_headerless_extra_cells() -> None:
    text = f"install_sid,exam_sid,session_sid,,course\n{INS},{EXM},{S1},ignored\n{INS},{EXM}\n"
    parsed = watchcsv.parse(text, NAME)
    assert parsed.problems == ("1 row with an invalid session_sid, first at line 3",)
    assert parsed.watches[SessionKey(INS, EXM, S1)].labels == {}


def test_empty_and_header_only_files_list_nothing_without_a_problem() -> None:
    assert watchcsv.parse("", NAME) == watchcsv.Parsed()
    assert watchcsv.parse("\n\n", NAME) == watchcsv.Parsed()
    assert watchcsv.parse("install_sid,exam_sid,session_sid\n", NAME) == watchcsv.Parsed()


def test_an_unreadable_csv_is_one_problem() -> None:
    text = f'install_sid,exam_sid,session_sid\n{INS},{EXM},{S1}\n"{"x" * 200_000}",a,b\n'
    (line,) = watchcsv.parse(text, NAME).problems
    assert line.startswith("not a readable CSV file at line 3 (field larger than field limit")


def test_label_values_never_appear_in_problems() -> None:
    text = f"install_sid,exam_sid,session_sid,student\n{INS},{EXM},ESbad,jane.doe@example.edu\n"
    assert "jane" not in " ".join(watchcsv.parse(text, NAME).problems)


@given(st.lists(strategies.session_keys, max_size=20), st.sampled_from([",", ";", "\t"]))
def test_every_valid_row_is_a_watch(keys_: list[SessionKey], delimiter: str) -> None:
    lines = [delimiter.join(("installSid", "examSid", "sessionSid"))]
    lines += [delimiter.join(key) for key in keys_]
    parsed = watchcsv.parse("\n".join(lines), NAME)
    assert parsed.problems == ()
    assert list(parsed.watches) == list(dict.fromkeys(keys_))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("1.5", 1.5),
        ("250ms", 0.25),
        (" 5m ", 300.0),
        ("24h", 86400.0),
        ("1d", 86400.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert durations.seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "5 minutes", "1e3"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 30s"):
        durations.seconds(text)
