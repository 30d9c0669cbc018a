"""metrics.by_labels: the per-label review gauges of a real service polling the simulator,
scraped from its /metrics, against what the simulator serves."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor import service
from monitor.core.keys import SessionKey
from monitor.settings import Settings
from tests.conftest import SimHandle
from tests.settingskit import LOCAL, problems, write
from tests.test_server import get, run_until

PENDING, OVERDUE = "spmon_reviews_pending_by_label", "spmon_reviews_overdue_by_label"
COURSES = ["BIO101", "BIO101", "BIO101", "CHEM201", "CHEM201", "HIST110", "MATH150", None, None]
"""One per session, in watch order; None: the watch has no course label."""


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def set_reviews(sim: SimHandle, states: list[str]) -> None:
    """overdue / pending (deadline a day off) / done / none, one per session."""
    now = datetime.now(UTC)
    for key, state in zip(sim.keys, states, strict=True):
        sim.sim.set(
            key,
            status="Closed",
            reviewRequired=state != "none",
            reviewed=state == "done",
            reviewByDate=iso(now + timedelta(days=-1 if state == "overdue" else 1)),
        )


def truth(sim: SimHandle, courses: list[str | None], own: set[str]) -> dict[str, list[int]]:
    """(pending, overdue) per course value, read from the simulator's own payloads."""
    now = datetime.now(UTC)
    expected: dict[str, list[int]] = {}
    for key, name in zip(sim.keys, courses, strict=True):
        value = "none" if name is None else name if name in own else "other"
        counts = expected.setdefault(value, [0, 0])
        body = sim.sim.payload(key)
        if body["reviewRequired"] is True and body.get("reviewed") is not True:
            counts[0] += 1
            deadline = datetime.fromisoformat(str(body["reviewByDate"]))
            counts[1] += deadline < now
    return expected


def watches(keys: list[SessionKey], courses: list[str | None]) -> list[dict[str, object]]:
    return [
        {
            "install_sid": k.install_sid,
            "exam_sid": k.exam_sid,
            "session_sid": k.session_sid,
            "labels": {"course": c} if c else {"room": "7"},
        }
        for k, c in zip(keys, courses, strict=True)
    ]


def settings_for(
    sim: SimHandle, state: Path, courses: list[str | None] = COURSES, **metrics: object
) -> Settings:
    return Settings(
        api={"base_url": sim.url, "rate_limit": 500, "retries": 0, "timeout": 2},
        poll={"interval": 1},
        state={"path": state},
        http={"listen": "127.0.0.1:0"},
        watches=watches(sim.keys, courses),
        metrics=metrics,
    )


def by_course(text: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for family in text_string_to_metric_families(text):
        if family.name in (PENDING, OVERDUE):
            for sample in family.samples:
                counts = found.setdefault(sample.labels["course"], [0, 0])
                counts[family.name == OVERDUE] = int(sample.value)
    return found


def total(text: str, name: str) -> float:
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == name]
    return family.samples[0].value


async def scrape_when(svc: service.Service, done) -> str:
    """/metrics once `done(text)` holds (every session polled with the simulator's answer)."""
    async with asyncio.timeout(15):
        while True:
            text = (await get(f"http://{svc.address}/metrics"))[2]
            if done(text):
                return text
            await asyncio.sleep(0.05)


def promtool_lint(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr


async def test_reviews_by_course_match_the_simulator(simulator, state_path: Path) -> None:
    sim = await simulator(len(COURSES))
    first = [
        "overdue",
        "overdue",
        "pending",
        "overdue",
        "done",
        "pending",
        "overdue",
        "overdue",
        "none",
    ]
    then = ["done", "overdue", "pending", "overdue", "overdue", "done", "pending", "none", "none"]
    set_reviews(sim, first)
    own = {"BIO101", "CHEM201", "HIST110", "MATH150"}

    async def check(svc: service.Service) -> tuple[str, str]:
        expected = truth(sim, COURSES, own)
        seen = await scrape_when(svc, lambda text: by_course(text) == expected)
        set_reviews(sim, then)  # the next poll (1 s) sees the new truth
        expected = truth(sim, COURSES, own)
        return seen, await scrape_when(svc, lambda text: by_course(text) == expected)

    seen, later = await run_until(settings_for(sim, state_path, by_labels=["course"]), check)
    assert by_course(seen) == {
        "BIO101": [3, 2], "CHEM201": [1, 1], "HIST110": [1, 0], "MATH150": [1, 1], "none": [1, 1]
    }  # fmt: skip
    # The sum over courses is the total, which keeps its single series.
    for text in (seen, later):
        assert sum(p for p, _ in by_course(text).values()) == total(text, "spmon_reviews_pending")
        assert sum(o for _, o in by_course(text).values()) == total(text, "spmon_reviews_overdue")
    assert "spmon_reviews_overdue{" not in seen
    promtool_lint(seen)


async def test_values_past_the_cap_count_as_other(simulator, state_path: Path) -> None:
    sim = await simulator(len(COURSES))
    set_reviews(sim, ["overdue"] * len(COURSES))
    settings = settings_for(sim, state_path, by_labels=["course"], label_values_max=2)

    async def check(svc: service.Service) -> str:
        return await scrape_when(
            svc, lambda text: sum(o for _, o in by_course(text).values()) == len(COURSES)
        )

    text = await run_until(settings, check)
    found = by_course(text)
    own = set(found) - {"other", "none"}
    # Two courses of their own, whichever the watch set met first; the other two are "other".
    assert len(own) == 2 and own < {"BIO101", "CHEM201", "HIST110", "MATH150"}
    assert found == truth(sim, COURSES, own)
    assert found["other"][1] > 0
    promtool_lint(text)


async def test_without_by_labels_there_are_no_label_series(simulator, state_path: Path) -> None:
    sim = await simulator(3)
    set_reviews(sim, ["overdue", "pending", "none"])
    settings = settings_for(sim, state_path, ["BIO101", "CHEM201", None])

    async def check(svc: service.Service) -> str:
        return await scrape_when(svc, lambda text: "spmon_reviews_overdue 1.0" in text)

    text = await run_until(settings, check)
    assert PENDING not in text and OVERDUE not in text


@pytest.mark.parametrize(
    ("metrics", "line"),
    [
        ({"by_labels": ["course name"]}, "metrics.by_labels[0]: must be a Prometheus label name"),
        ({"by_labels": ["course", "9lives"]}, "metrics.by_labels[1]: must be a Prometheus label"),
        ({"by_labels": ["__name__"]}, "metrics.by_labels[0]: names starting with __ are reserved"),
        ({"by_labels": ["instance"]}, "metrics.by_labels[0]: instance is reserved"),
        ({"by_labels": ["course", "course"]}, "metrics.by_labels: each label may be listed once"),
        ({"by_labels": ["a", "b", "c", "d"]}, "metrics.by_labels: List should have at most 3"),
        ({"by_labels": "course"}, "metrics.by_labels: Input should be a valid list"),
        ({"label_values_max": 0}, "metrics.label_values_max: Input should be greater than"),
        ({"by_label": ["course"]}, "metrics.by_label: unknown key"),
    ],
)
def test_bad_label_settings_stop_start_up_naming_the_key(
    tmp_path: Path, metrics: dict[str, object], line: str
) -> None:
    (found,) = problems(write(tmp_path / "c.yaml", {**LOCAL, "metrics": metrics}))
    assert found.startswith(line), found


def test_by_labels_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.settings import load_settings

    monkeypatch.setenv("SPMON_METRICS__BY_LABELS", '["course", "campus"]')
    settings = load_settings(write(tmp_path / "c.yaml", LOCAL))
    assert settings.metrics.by_labels == ["course", "campus"]
    assert settings.metrics.label_values_max == 50
