"""Secrets never reach the log: structlog events, stdlib records and tracebacks alike."""

from __future__ import annotations

import io
import json
import logging

import aiohttp
import pytest
import structlog

from monitor import logs

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlLXNlY3JldA"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


@pytest.fixture
def stream() -> io.StringIO:
    out = io.StringIO()
    logs.configure("json", "debug", stream=out).add(["custom-secret-value"])
    yield out
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_secret_values_and_shapes_are_scrubbed(stream: io.StringIO) -> None:
    log = structlog.get_logger("t")
    log.info(
        "x",
        note=f"token {TOKEN} url {SLACK}",
        nested={"token": "abc", "list": ["custom-secret-value"]},
    )
    text = stream.getvalue()
    assert TOKEN not in text and "XXXXsecretXXXX" not in text and "custom-secret-value" not in text
    (event,) = lines(stream)
    assert event["nested"]["token"] == "[REDACTED]"


def test_tracebacks_do_not_dump_locals(stream: io.StringIO) -> None:
    log = structlog.get_logger("t")

    def failing(webhook_url: str) -> None:
        headers = {"token": TOKEN}  # noqa: F841  # a local a traceback renderer could show
        raise ValueError("boom")

    try:
        failing(SLACK)
    except ValueError:
        log.exception("failed")
    text = stream.getvalue()
    assert "boom" in text
    assert TOKEN not in text and "XXXXsecretXXXX" not in text


def test_stdlib_records_with_aiohttp_errors_are_scrubbed(stream: io.StringIO) -> None:
    info = aiohttp.RequestInfo(
        url=__import__("yarl").URL(SLACK),
        method="POST",
        headers={},
        real_url=__import__("yarl").URL(SLACK),
    )  # type: ignore[arg-type]
    exc = aiohttp.ClientResponseError(info, (), status=404, message="Not Found")
    assert "XXXXsecretXXXX" in str(exc)  # the leak this guards against
    logging.getLogger("aiohttp.client").error("request failed: %s", exc)
    try:
        raise exc
    except aiohttp.ClientResponseError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    text = stream.getvalue()
    assert "XXXXsecretXXXX" not in text and "404" in text
