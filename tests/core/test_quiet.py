"""core.quiet: whether an instant is quiet and when the quiet time ends, across midnight,
weekends, dated breaks, one-off windows and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core import quiet

CHICAGO = ZoneInfo("America/Chicago")
NIGHTS = quiet.Daily(time(22), time(7))
WEEKEND = quiet.Daily(days=frozenset({5, 6}))


def _t(*parts: int, zone: ZoneInfo = CHICAGO) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()  # type: ignore[misc]


def test_nights_across_midnight_in_the_sink_zone() -> None:
    schedule = quiet.Schedule((NIGHTS,), CHICAGO)
    assert quiet.until(schedule, _t(2026, 11, 18, 21, 59)) is None
    assert quiet.until(schedule, _t(2026, 11, 18, 22, 0)) == _t(2026, 11, 19, 7, 0)
    assert quiet.until(schedule, _t(2026, 11, 19, 3, 0)) == _t(2026, 11, 19, 7, 0)
    assert quiet.until(schedule, _t(2026, 11, 19, 7, 0)) is None


def test_a_weekend_and_its_nights_chain_into_one_quiet_time() -> None:
    schedule = quiet.Schedule((NIGHTS, WEEKEND), CHICAGO)
    friday_night = _t(2026, 11, 20, 23, 0)
    assert quiet.until(schedule, friday_night) == _t(2026, 11, 23, 7, 0)  # Monday 07:00


def test_dated_break_is_whole_days_inclusive() -> None:
    schedule = quiet.Schedule((quiet.Dates(date(2026, 12, 20), date(2027, 1, 4)),), CHICAGO)
    assert quiet.until(schedule, _t(2026, 12, 19, 23, 59)) is None
    assert quiet.until(schedule, _t(2026, 12, 20, 0, 0)) == _t(2027, 1, 5, 0, 0)


def test_days_limit_which_nights_start() -> None:
    weeknights = quiet.Daily(time(22), time(7), frozenset(range(5)))
    schedule = quiet.Schedule((weeknights,), CHICAGO)
    assert quiet.until(schedule, _t(2026, 11, 21, 23, 0)) is None  # Saturday night
    assert quiet.until(schedule, _t(2026, 11, 21, 3, 0)) == _t(2026, 11, 21, 7, 0)  # Fri's


def test_one_off_window() -> None:
    schedule = quiet.Schedule((quiet.Absolute(100.0, 200.0),), UTC)
    assert quiet.until(schedule, 99.0) is None
    assert quiet.until(schedule, 100.0) == 200.0
    assert quiet.until(schedule, 200.0) is None


def test_daylight_saving_keeps_wall_clock_times() -> None:
    schedule = quiet.Schedule((quiet.Daily(time(1, 30), time(3)),), CHICAGO)
    # 2026-03-08: 02:00 → 03:00 in Chicago; 2026-11-01: 02:00 → 01:00.
    assert quiet.until(schedule, _t(2026, 3, 8, 1, 45)) == _t(2026, 3, 8, 3, 0)
    end = quiet.until(schedule, _t(2026, 11, 1, 1, 45))
    assert end == _t(2026, 11, 1, 3, 0)


def test_windows_that_cover_every_hour_of_every_day_are_quiet_for_ever() -> None:
    nightly = quiet.Schedule((quiet.Daily(time(0), time(1)), quiet.Daily(time(1), time(0))), UTC)
    assert quiet.always(nightly)
    assert quiet.until(nightly, _t(2026, 11, 18, 12, 0)) == quiet.FOREVER
    week = quiet.Schedule(
        (quiet.Daily(time(8), time(20), frozenset(range(5))), NIGHTS, WEEKEND), CHICAGO
    )  # weekdays 08-20, every night 22-07, and the weekend: 20:00-22:00 is not quiet
    assert not quiet.always(week)
    assert quiet.until(week, _t(2026, 11, 18, 12, 0)) == _t(2026, 11, 18, 20, 0)
    sunday_into_monday = quiet.Daily(time(12), time(12), frozenset({6}))  # Sun 12 → Mon 12
    rest = quiet.Daily(time(12), time(12), frozenset(range(6)))
    assert quiet.always(quiet.Schedule((sunday_into_monday, rest), CHICAGO))
    assert not quiet.always(quiet.Schedule((rest,), CHICAGO))
    dated = quiet.Schedule((quiet.Dates(date(2026, 1, 1), date(2030, 1, 1)),), CHICAGO)
    assert not quiet.always(dated)  # it ends, years ahead
    assert quiet.until(dated, _t(2026, 11, 18, 12, 0)) == _t(2030, 1, 2, 0, 0)


def _window() -> st.SearchStrategy[quiet.Window]:
    clock = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
    days = st.frozensets(st.integers(0, 6), min_size=1)
    daily = st.builds(quiet.Daily, clock, clock, days)
    first = st.dates(date(2026, 1, 1), date(2027, 12, 31))
    dates = st.builds(
        lambda d, n: quiet.Dates(d, date.fromordinal(d.toordinal() + n)), first, st.integers(0, 20)
    )
    start = st.floats(1.77e9, 1.83e9)
    absolute = st.builds(lambda s, n: quiet.Absolute(s, s + n), start, st.floats(1, 86400 * 3))
    return st.one_of(daily, dates, absolute)


ZONES = st.sampled_from([UTC, CHICAGO, ZoneInfo("Europe/Berlin"), ZoneInfo("Australia/Lord_Howe")])


@settings(max_examples=300, deadline=None)
@given(
    windows=st.lists(_window(), min_size=1, max_size=4),
    zone=ZONES,
    at=st.floats(1.77e9, 1.83e9),
    probes=st.lists(st.floats(0, 1), max_size=8),
)
def test_until_is_the_end_of_the_quiet_time(
    windows: list[quiet.Window], zone: ZoneInfo, at: float, probes: list[float]
) -> None:
    schedule = quiet.Schedule(tuple(windows), zone)
    end = quiet.until(schedule, at)
    if end is None:
        return
    assert end > at
    if end == quiet.FOREVER:  # windows that together cover every hour of every day
        assert quiet.always(schedule)
        assert all(quiet.until(schedule, at + u * 86400 * 365) == end for u in probes)
        return
    assert quiet.until(schedule, end) is None  # a real end: the instant it names is not quiet
    for u in probes:  # and every instant before the end is quiet, ending at the same time
        inside = at + u * (end - at)
        if inside < end:
            assert quiet.until(schedule, inside) == end
