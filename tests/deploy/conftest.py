"""Fixtures for the deployment tests: a running simulator + spmon pair and a webhook receiver."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import yaml
from deploykit import Proc, Stack, child_env, free_port, http_get, python_module_argv, wait_until

from tests.sinks.sinkkit import Receiver, in_thread

# Starting Python, opening SQLite and the first poll cycle take a few seconds on a busy
# 2-core CI machine; these bounds are generous so that only a real hang fails.
_CONFIG_TIMEOUT = 30.0
_READY_TIMEOUT = 45.0


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    """A loopback webhook endpoint that accepts everything (the deploy tests are synchronous,
    so it serves from its own thread)."""
    with in_thread(Receiver()) as receiver:
        yield receiver


@pytest.fixture
def spmon_stack(tmp_path: Path, webhook_receiver: Receiver) -> Iterator[Callable[..., Stack]]:
    """Factory: start `spmon simulate` and `spmon run` against it; stops both afterwards.

    create(sessions=5, seed=1, change_every=None, argv=None, env=None, root=None, user=None)
      argv  the command that is `spmon` (default: this interpreter's `-m monitor`)
      env   base environment (default: ours without SPMON_ variables)
      root  directory for config, state and logs (default: tmp_path)
      user  (uid, gid) to run both processes as
      settings_env  SPMON_ variables that override the test's defaults
      cwd   working directory of `spmon run` (default: the state directory)
    The spmon config is the one the simulator writes, plus a webhook sink pointing at
    webhook_receiver so that per-sink series exist.
    """
    procs: list[Proc] = []
    hook_url = webhook_receiver.url + "/spmon"

    def create(
        *,
        sessions: int = 5,
        seed: int = 1,
        change_every: float | None = None,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        root: Path | None = None,
        user: tuple[int, int] | None = None,
        settings_env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Stack:
        command = list(argv or python_module_argv())
        base_env = dict(env if env is not None else child_env())
        where = root or tmp_path
        config_dir, state_dir, logs = where / "config", where / "state", where / "logs"
        for directory in (config_dir, state_dir, logs):
            directory.mkdir(parents=True, exist_ok=True)
        if user is not None:
            # Like the image's /var/lib/spmon: the service user owns only what it writes.
            for directory in (config_dir, state_dir):
                os.chown(directory, *user)
        sim_port, http_port = free_port(), free_port()
        generated = config_dir / "simulator.yaml"
        simulate = [
            *command,
            "simulate",
            f"--sessions={sessions}",
            f"--seed={seed}",
            f"--listen=127.0.0.1:{sim_port}",
            f"--config-out={generated}",
            f"--public-url=http://127.0.0.1:{sim_port}",
        ]
        if change_every is not None:
            simulate.append(f"--change-every={change_every:g}")
        simulator = Proc(
            f"simulator-{len(procs)}",
            simulate,
            logs=logs,
            env=base_env,
            cwd=where,
            preexec_user=user,
        )
        procs.append(simulator)
        wait_until(
            f"the simulator to write {generated}\n{simulator.describe()}",
            lambda: _config_written(generated, simulator),
            timeout=_CONFIG_TIMEOUT,
        )
        config = config_dir / "spmon.yaml"
        _add_webhook_sink(generated, config, hook_url)
        run_env = {
            **base_env,
            "SPMON_HTTP__LISTEN": f"127.0.0.1:{http_port}",
            "SPMON_STATE__PATH": str(state_dir / "spmon.db"),
            "SPMON_LOG__FORMAT": "json",
            **(settings_env or {}),
        }
        spmon = Proc(
            f"spmon-{len(procs)}",
            [*command, "run", "--config", str(config)],
            logs=logs,
            env=run_env,
            cwd=cwd or state_dir,
            preexec_user=user,
        )
        procs.append(spmon)
        stack = Stack(
            simulator, spmon, config, state_dir, f"http://127.0.0.1:{http_port}", hook_url
        )
        wait_until(
            f"spmon /readyz to answer 200\n{stack.describe()}",
            lambda: _ready(stack),
            timeout=_READY_TIMEOUT,
        )
        return stack

    yield create
    for proc in reversed(procs):
        proc.stop()


def _config_written(path: Path, simulator: Proc) -> bool:
    if not simulator.alive():
        raise AssertionError(f"the simulator exited early\n{simulator.describe()}")
    if not path.is_file():
        return False
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return False  # half-written
    return isinstance(loaded, dict) and bool(loaded.get("watches") or loaded.get("watch_files"))


def _add_webhook_sink(source: Path, target: Path, url: str) -> None:
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    # A receiver on loopback, unsigned: both are deliberate opt-ins.
    hook = {"name": "hooks", "type": "webhook", "url": url, "allow_private": True, "unsigned": True}
    config["sinks"] = [*config.get("sinks", []), hook]
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _ready(stack: Stack) -> bool:
    for proc in (stack.simulator, stack.spmon):
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited early\n{stack.describe()}")
    status, _ = http_get(f"{stack.base_url}/readyz")
    return status == 200
