"""`spmon test-sink` as a subprocess against a real receiver of every sink type: the sample
arrives marked TEST, the outcome is printed, the exit code says whether it was delivered."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sinks.sinkkit import SECRET, Receiver, scripted, verifier
from tests.sinks.smtpkit import Mailbox, smtp_server

pytestmark = pytest.mark.slow


async def test_sink(config: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "test-sink", *args, "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


test_sink.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def write(tmp_path: Path, sinks: list[dict[str, Any]]) -> Path:
    config = tmp_path / "spmon.yaml"
    body = {"api": {"base_url": "http://127.0.0.1:9"}, "sinks": sinks}
    config.write_text(yaml.safe_dump(body), encoding="utf-8")
    return config


async def test_every_sink_type_gets_a_marked_sample(endpoint: Any, tmp_path: Path) -> None:
    hook: Receiver = await endpoint(verifier(SECRET))
    plain: Receiver = await endpoint()
    with smtp_server(Mailbox()) as box:
        local = {"allow_private": True}
        config = write(tmp_path, [
            {"name": "hook", "type": "webhook", "url": hook.url, "secret": SECRET, **local},
            {"name": "slack", "type": "slack", "url": plain.url + "/slack", **local},
            {"name": "am", "type": "alertmanager", "url": plain.url, **local},
            {"name": "teams", "type": "teams", "url": plain.url + "/teams", **local},
            {"name": "mail", "type": "email", **local, "email": {
                "host": "127.0.0.1", "port": box.port, "tls": "none",
                "from": "spmon@example.edu", "to": ["desk@example.edu"]}},
        ])  # fmt: skip
        for name in ("hook", "slack", "am", "teams", "mail"):
            code, out, err = await test_sink(config, name)
            assert code == 0, (name, out, err)
            assert out.startswith(f"sink {name} (") and out.rstrip().endswith(": delivered")
    assert len(hook.hits) == 1 and b"TEST alert" in hook.hits[0].body
    paths = [hit.path for hit in plain.hits]
    assert paths == ["/slack", "/api/v2/alerts", "/teams"]
    assert all(b"TEST alert" in hit.body for hit in plain.hits)
    (mail,) = box.messages
    assert "TEST alert" in str(mail["Subject"])


async def test_a_gone_receiver_is_reported_and_exits_1(endpoint: Any, tmp_path: Path) -> None:
    server: Receiver = await endpoint(scripted(410))
    config = write(tmp_path, [{"name": "teams", "type": "teams", "url": server.url,
                               "allow_private": True}])  # fmt: skip
    code, out, _ = await test_sink(config, "teams", "--type", "session.status_changed")
    assert code == 1
    assert out.rstrip().endswith("disabled: HTTP 410: the receiver is gone")


async def test_an_unknown_sink_is_a_config_error(tmp_path: Path) -> None:
    code, _, err = await test_sink(write(tmp_path, []), "nope")
    assert code == 2
    assert "no sink named 'nope'" in err


async def test_the_sample_shows_times_in_the_display_time_zone(
    endpoint: Any, tmp_path: Path
) -> None:
    plain: Receiver = await endpoint()
    config = write(tmp_path, [{"name": "teams", "type": "teams", "url": plain.url,
                               "allow_private": True}])  # fmt: skip
    body = yaml.safe_load(config.read_text(encoding="utf-8"))
    body["display"] = {"timezone": "America/Chicago"}
    config.write_text(yaml.safe_dump(body), encoding="utf-8")
    code, out, err = await test_sink(config, "teams")
    assert code == 0, (out, err)
    (hit,) = plain.hits
    assert b" CST" in hit.body and b" UTC" not in hit.body
