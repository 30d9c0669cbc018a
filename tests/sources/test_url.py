"""The URL watch source against a real server on 127.0.0.1: conditional GETs, the auth header
from a file, failures as one line without the URL, and the address guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.sources import SourceError, UrlOptions, UrlReader
from tests.sources.urlkit import MODIFIED, WatchServer, csv_of, serve_watches


def reader(url: str, **kw: object) -> UrlReader:
    return UrlReader(UrlOptions(url=url, name="url:test", allow_private=True, **kw))  # type: ignore[arg-type]


async def test_an_unchanged_list_is_a_304_and_reuses_the_last_good_one(tmp_path: Path) -> None:
    secret = tmp_path / "auth"
    secret.write_text("Bearer s3cret\n", encoding="utf-8")
    server = WatchServer(body=csv_of(1, 2), token="Bearer s3cret")
    async with serve_watches(server):
        source = reader(server.url, auth=lambda: secret.read_text(encoding="utf-8").strip())
        first = await source.read()
        again = await source.read()
        server.publish(csv_of(2, 3))
        changed = await source.read()
    assert [k.session_sid[-1] for k in first.watches] == ["1", "2"]
    assert again.watches == first.watches
    assert [k.session_sid[-1] for k in changed.watches] == ["2", "3"]
    assert {w.source for w in changed.watches.values()} == {"url:test"}
    sent = server.requests
    assert all(r["Authorization"] == "Bearer s3cret" for r in sent)
    assert "If-None-Match" not in sent[0]
    assert sent[1]["If-None-Match"] == '"v1"' and sent[1]["If-Modified-Since"] == MODIFIED


async def test_a_list_with_problems_is_returned_with_them_and_not_remembered() -> None:
    server = WatchServer(body=csv_of(1, header="a,b,c"))
    async with serve_watches(server):
        source = reader(server.url)
        found = await source.read()
        await source.read()
    assert found.problems == ("no columns install_sid, exam_sid, session_sid (found: a, b, c)",)
    assert "If-None-Match" not in server.requests[1]  # a bad answer is not the last good one


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ({"status": 503}, "answered HTTP 503"),
        ({"token": "Bearer other"}, "answered HTTP 401"),
    ],
)
async def test_a_failed_read_is_one_line_naming_the_host_only(setup: dict, reason: str) -> None:
    server = WatchServer(body=csv_of(1), **setup)
    async with serve_watches(server):
        with pytest.raises(SourceError) as caught:
            await reader(server.url + "?key=hunter2").read()
    assert str(caught.value) == f"127.0.0.1: {reason}"


async def test_redirects_are_not_followed() -> None:
    server = WatchServer(body=csv_of(1))
    async with serve_watches(server):
        with pytest.raises(SourceError, match="answered HTTP 302"):
            await reader(server.url.replace("watches.csv", "moved")).read()
    assert len(server.requests) == 1


async def test_an_unreadable_auth_file_fails_the_read_without_a_request() -> None:
    server = WatchServer(body=csv_of(1))
    async with serve_watches(server):
        with pytest.raises(SourceError, match="auth file cannot be read"):
            await reader(server.url, auth=lambda: None).read()
    assert server.requests == []


async def test_loopback_is_refused_unless_allowed_and_nothing_is_sent() -> None:
    server = WatchServer(body=csv_of(1))
    async with serve_watches(server):
        guarded = UrlReader(UrlOptions(url=server.url, name="url:x"))
        with pytest.raises(SourceError, match="a loopback address"):
            await guarded.read()
        named = UrlReader(UrlOptions(url=server.url.replace("127.0.0.1", "localhost"), name="u"))
        with pytest.raises(SourceError, match="loopback"):
            await named.read()
    assert server.requests == []


async def test_a_server_that_is_not_there_is_a_connection_failure(unused_tcp_port: int) -> None:
    with pytest.raises(SourceError, match=r"^127\.0\.0\.1: cannot connect"):
        await reader(f"http://127.0.0.1:{unused_tcp_port}/w.csv", timeout=5.0).read()
