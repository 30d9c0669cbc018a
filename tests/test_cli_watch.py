"""`spmon watch` as a subprocess on a real state file, and check-config's source report."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.store import SqliteStore
from tests.sources.urlkit import EXAM, INSTALL, csv_of
from tests.test_cli import config, spmon

S1, S2, S3 = (f"ES{n:032x}" for n in (1, 2, 3))


def setup(tmp_path: Path, **extra: object) -> str:
    data = {"api": {"base_url": "http://127.0.0.1:9"}, "state": {"path": str(tmp_path / "s.db")}}
    return config(tmp_path / "c.yaml", {**data, **extra})


async def ls(path: str, *flags: str) -> list[dict]:
    code, out, err = await spmon("watch", "ls", "--json", *flags, "--config", path)
    assert code == 0, err
    return json.loads(out)["watches"]


async def test_add_ls_rm_import_round_trip(tmp_path: Path) -> None:
    path = setup(tmp_path)
    add = ("watch", "add", INSTALL, EXAM, S1, "--label", "course=BIO", "--interval", "5m")
    assert (await spmon(*add, "--config", path))[:2] == (0, f"added {S1}\n")
    assert (await spmon(*add[:5], "--config", path))[:2] == (0, f"updated {S1}\n")
    (tmp_path / "more.csv").write_text(csv_of(1, 2, 3), encoding="utf-8")
    code, out, _ = await spmon("watch", "import", str(tmp_path / "more.csv"), "--config", path)
    assert (code, out) == (0, f"imported {tmp_path / 'more.csv'}: 2 added, 0 updated, 1 same\n")
    assert [(w["session_sid"], w["source"]) for w in await ls(path)] == [
        (S1, "cli"), (S2, "cli"), (S3, "cli")
    ]  # fmt: skip
    assert (await spmon("watch", "rm", S2, "--config", path))[:2] == (0, f"removed {S2}\n")
    assert [w["session_sid"] for w in await ls(path)] == [S1, S3]
    everything = await ls(path, "--all")
    assert [(w["session_sid"], w["removed_at"] is None) for w in everything] == [
        (S1, True), (S2, False), (S3, True)
    ]  # fmt: skip
    code, out, _ = await spmon("watch", "ls", "--all", "--config", path)
    assert code == 0 and out.splitlines()[-1] == "2 watched, 1 removed"


async def test_errors_are_one_line(tmp_path: Path) -> None:
    path = setup(tmp_path)
    bad = await spmon("watch", "add", INSTALL, EXAM, "ES123", "--config", path)
    assert bad[0] == 2 and bad[2] == "spmon: watch add: session_sid must match ^ES[a-f0-9]{32}$\n"
    label = await spmon("watch", "add", INSTALL, EXAM, S1, "--label", "nope", "--config", path)
    assert label[0] == 2 and label[2] == "spmon: watch add: --label expects key=value\n"
    unknown = await spmon("watch", "rm", S1, "--config", path)
    assert (
        unknown[0] == 1
        and unknown[2] == f"spmon: watch rm: {S1} is not watched in {tmp_path / 's.db'}\n"
    )
    (tmp_path / "bad.csv").write_text(csv_of(*range(10_000), header="a,b,c"), encoding="utf-8")
    code, _, err = await spmon("watch", "import", str(tmp_path / "bad.csv"), "--config", path)
    assert code == 2 and len(err.splitlines()) == 1 and "no columns install_sid" in err
    assert await ls(path) == []  # nothing was imported


async def test_editing_beside_a_running_service_is_refused_in_one_line(tmp_path: Path) -> None:
    path = setup(tmp_path)
    async with SqliteStore(tmp_path / "s.db"):  # holds the lock, as `spmon run` does
        code, _, err = await spmon("watch", "add", INSTALL, EXAM, S1, "--config", path)
        assert await ls(path) == []  # reading works beside it
    assert code == 2
    assert (
        err
        == f"spmon: state file {tmp_path / 's.db'}: in use by a running spmon; stop it to edit its watches\n"
    )


async def test_removing_a_file_watch_says_it_comes_back(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_text(csv_of(1), encoding="utf-8")
    path = setup(tmp_path, watch_files=["w.csv"])
    assert (await spmon("once", "--config", path))[0] == 3  # the API is not there: unknown
    code, _, err = await spmon("watch", "rm", S1, "--config", path)
    assert code == 0 and "it came from file:w.csv; the next start watches it again" in err


async def test_check_config_reports_sources_and_what_a_start_would_change(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_text(csv_of(1, 2), encoding="utf-8")
    path = setup(tmp_path, watch_files=["w.csv"])
    code, out, _ = await spmon("check-config", "--config", path)
    assert code == 0
    assert out.splitlines()[-2:] == ["# source inline: 0 watches", "# source file:w.csv: 2 watches"]
    assert (await spmon("once", "--config", path))[0] == 3  # writes the watches to the store
    (tmp_path / "w.csv").write_text(csv_of(2, 3, 4), encoding="utf-8")
    before = (tmp_path / "s.db").read_bytes()
    code, out, _ = await spmon("check-config", "--config", path)
    assert code == 0
    assert out.splitlines()[-1] == f"# against {tmp_path / 's.db'}: 2 added, 1 removed, 0 changed"
    assert (tmp_path / "s.db").read_bytes() == before  # read-only


async def test_the_same_commands_in_process_and_a_url_in_the_report(tmp_path: Path) -> None:
    """In-process (click's runner, the real state file): the lines a subprocess test cannot
    count for coverage, and check-config's line for a URL source that cannot be read."""
    import asyncio

    from click.testing import CliRunner

    from monitor.cli import main
    from tests.sources.urlkit import WatchServer, serve_watches

    server = WatchServer(body=csv_of(5), status=503)
    async with serve_watches(server):
        source = {"type": "url", "url": server.url, "allow_http": True, "allow_private": True}
        path = setup(tmp_path, sources=[source])

        def run(*args: str) -> tuple[int, str]:
            result = CliRunner().invoke(main, [*args, "--config", path])
            return result.exit_code, result.output

        assert (await asyncio.to_thread(run, "watch", "add", INSTALL, EXAM, S1, "--label", "a=b"))[
            0
        ] == 0
        (tmp_path / "w.csv").write_text(csv_of(2), encoding="utf-8")
        assert (await asyncio.to_thread(run, "watch", "import", str(tmp_path / "w.csv")))[0] == 0
        code, out = await asyncio.to_thread(run, "watch", "ls", "--all")
        assert code == 0 and "a=b" in out and out.splitlines()[-1] == "2 watched, 0 removed"
        assert (await asyncio.to_thread(run, "watch", "rm", S2))[0] == 0
        assert (await asyncio.to_thread(run, "watch", "add", INSTALL, EXAM, S3, "--interval", "x"))[
            0
        ] == 2
        code, out = await asyncio.to_thread(run, "check-config")
    assert code == 0
    url = source["url"]
    assert f"# source url:{url}: 0 watches (cannot read: 127.0.0.1: answered HTTP 503)" in out
    assert out.splitlines()[-1] == f"# against {tmp_path / 's.db'}: 0 added, 0 removed, 0 changed"
