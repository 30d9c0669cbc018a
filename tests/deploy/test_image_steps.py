"""The container image, checked without a Docker engine.

Static tests read the Dockerfile, .dockerignore and the lock files. The slow test replays
the image: it copies what the build stage COPYs, runs the build stage's RUN lines with
the same environment (only /opt/spmon and /var/lib/spmon moved into a temp dir), then
starts the ENTRYPOINT + CMD with the runtime stage's ENV, as UID 10001 when the test runs
as root, probes it with the HEALTHCHECK command and stops it with the STOPSIGNAL.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from deploykit import (
    REPO,
    Stack,
    Stage,
    child_env,
    dockerfile_stages,
    dockerignore_excludes,
    free_port,
    http_get,
)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

DOCKERFILE = REPO / "Dockerfile"
SERVICE_UID = 10001


@pytest.fixture(scope="module")
def stages() -> tuple[dict[str, str], list[Stage]]:
    return dockerfile_stages(DOCKERFILE)


@pytest.fixture(scope="module")
def runtime(stages: tuple[dict[str, str], list[Stage]]) -> Stage:
    return stages[1][-1]


@pytest.fixture(scope="module")
def build(stages: tuple[dict[str, str], list[Stage]]) -> Stage:
    return stages[1][0]


def _only(stage: Stage, keyword: str) -> str:
    found = stage.all(keyword)
    assert len(found) == 1, f"expected one {keyword} in the runtime stage, found {found}"
    return found[0].args


# --- Dockerfile, statically -----------------------------------------------------------


def test_both_stages_build_on_the_same_slim_python(
    stages: tuple[dict[str, str], list[Stage]],
) -> None:
    global_args, all_stages = stages
    assert [s.name for s in all_stages] == ["build", "runtime"]
    assert {s.base for s in all_stages} == {"${PYTHON_IMAGE}"}
    assert re.fullmatch(r"python:3\.1[12]-slim(-\w+)?", global_args["PYTHON_IMAGE"])


def test_runtime_runs_as_a_numeric_non_root_user(runtime: Stage) -> None:
    user = _only(runtime, "USER")
    uid, _, gid = user.partition(":")
    assert (uid, gid) == (str(SERVICE_UID), str(SERVICE_UID))
    # USER comes after every RUN: nothing at run time can act as root.
    keywords = [i.keyword for i in runtime.instructions]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")


def test_runtime_environment_fits_a_read_only_root(runtime: Stage) -> None:
    env = runtime.env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    assert env["SPMON_HTTP__LISTEN"] == "0.0.0.0:10317"
    assert env["SPMON_STATE__PATH"] == "/var/lib/spmon/spmon.db"
    assert env["PATH"].startswith("/opt/spmon/bin:")
    state_dir = str(Path(env["SPMON_STATE__PATH"]).parent)
    assert _only(runtime, "VOLUME") == f'["{state_dir}"]'
    assert _only(runtime, "WORKDIR") == state_dir
    assert _only(runtime, "EXPOSE") == env["SPMON_HTTP__LISTEN"].rsplit(":", 1)[1]
    # The state directory is created for the service user (named volumes copy this owner).
    setup = " ".join(i.args for i in runtime.all("RUN"))
    assert f"-o {SERVICE_UID} -g {SERVICE_UID}" in setup and state_dir in setup


def test_entrypoint_cmd_and_healthcheck_are_exec_form(runtime: Stage) -> None:
    (entrypoint,) = runtime.all("ENTRYPOINT")
    (cmd,) = runtime.all("CMD")
    (health,) = runtime.all("HEALTHCHECK")
    assert entrypoint.exec_form() == ["spmon"]
    assert cmd.exec_form() == ["run"]
    assert health.exec_form() == ["spmon", "healthcheck"]
    assert re.search(r"--interval=\d+s", health.args) and re.search(r"--timeout=\d+s", health.args)
    assert _only(runtime, "STOPSIGNAL") == "SIGTERM"


def test_oci_labels_are_set(runtime: Stage) -> None:
    labels = " ".join(i.args for i in runtime.all("LABEL"))
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def test_build_context_holds_what_the_build_copies_and_nothing_else(build: Stage) -> None:
    patterns = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for copy in build.all("COPY"):
        *sources, _ = copy.args.split()
        for source in sources:
            path = REPO / source
            assert path.exists(), f"COPY source {source} does not exist"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            kept = [
                f
                for f in files
                if "__pycache__" not in f.parts
                and not dockerignore_excludes(patterns, f.relative_to(REPO).as_posix())
            ]
            assert kept, f"COPY {source}: .dockerignore leaves nothing of it in the context"
    for ignored in ("tests/deploy/test_image_steps.py", ".git/config", "monitor/__pycache__/x.pyc"):
        assert dockerignore_excludes(patterns, ignored), ignored
    for shipped in ("pyproject.toml", "monitor/cli.py", "deploy/docker/install.sh"):
        assert not dockerignore_excludes(patterns, shipped), shipped


def _lock(path: Path) -> dict[str, tuple[str, int]]:
    """{canonical name: (version, number of hashes)} of a pip-compile/uv lock file."""
    text = path.read_text(encoding="utf-8")
    pins: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=\S)", text):
        head = block.split("\\", 1)[0].strip()
        if not head or head.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)(\s*;.*)?", head)
        assert match, f"{path.name}: not an exact pin: {head!r}"
        name = canonicalize_name(match.group(1).split("[")[0])
        pins[name] = (match.group(2), block.count("--hash=sha256:"))
    return pins


def test_requirements_lock_pins_every_dependency_with_hashes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pins = _lock(REPO / "requirements.lock")
    for name, (_, hashes) in pins.items():
        assert hashes >= 1, f"{name} has no hash: pip --require-hashes would refuse the lock"
    for spec in project["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} from pyproject.toml is missing in the lock"
        assert requirement.specifier.contains(pins[name][0]), (
            f"lock pins {name}=={pins[name][0]}, pyproject.toml wants {requirement.specifier}"
        )


def test_build_lock_pins_the_build_backend() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pins = _lock(REPO / "deploy" / "docker" / "build-requirements.lock")
    for spec in project["build-system"]["requires"]:
        requirement = Requirement(spec)
        version, hashes = pins[canonicalize_name(requirement.name)]
        assert hashes >= 1 and requirement.specifier.contains(version)


# --- the image's steps, replayed -------------------------------------------------------


def _world_usable(path: Path) -> bool:
    """Whether a non-root user can execute `path` (every directory on the way traversable)."""
    real = path.resolve()
    if not real.is_file() or not real.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)


def _runtime_python() -> tuple[str, tuple[int, int] | None]:
    """The interpreter the venv is based on, and the user to run as.

    Running as root proves little about a non-root image, so as root we look for a
    Python 3.11+ that UID 10001 can execute (pyenv's lives under /root, mode 0700) and run
    the service as that UID. Without one we stay root and still check, by a before/after
    snapshot, that nothing is written outside the state directory.
    """
    if os.geteuid() != 0:
        return sys.executable, None
    for candidate in (Path(sys.executable), Path("/usr/bin/python3.11"), Path("/usr/bin/python3")):
        if _world_usable(candidate):
            probe = subprocess.run(
                [str(candidate), "-c", "import sys, venv; assert sys.version_info >= (3, 11)"],
                check=False,
                capture_output=True,
            )
            if probe.returncode == 0:
                return str(candidate), (SERVICE_UID, SERVICE_UID)
    return sys.executable, None


def _remap(value: str, mapping: dict[str, Path]) -> str:
    for image_path, local in mapping.items():
        value = value.replace(image_path, str(local))
    return value


def _replay_copies(build: Stage, context: Path) -> None:
    workdir = _only(build, "WORKDIR")
    for copy in build.all("COPY"):
        *sources, dest = copy.args.split()
        target = context / os.path.relpath(os.path.join(workdir, dest), workdir)
        for source in sources:
            origin = REPO / source
            if origin.is_dir():
                shutil.copytree(
                    origin, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    }


@pytest.fixture
def image_root() -> Iterator[Path]:
    """A temp dir a non-root UID can traverse (pytest's tmp_path is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="spmon-image-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_image_build_and_start_steps_replayed(
    image_root: Path, build: Stage, runtime: Stage, spmon_stack: Callable[..., Stack]
) -> None:
    python, user = _runtime_python()
    prefix = image_root / "opt" / "spmon"
    state = image_root / "var" / "lib" / "spmon"
    mapping = {"/opt/spmon": prefix, "/var/lib/spmon": state}

    # Build stage: COPY, then every RUN with the stage's ENV, in WORKDIR.
    context = image_root / "src"
    context.mkdir()
    _replay_copies(build, context)
    build_env = child_env(PYTHON=python, BUILD_PYTHON=sys.executable)
    build_env.update({k: _remap(v, mapping) for k, v in build.env().items()})
    for run in build.all("RUN"):
        done = subprocess.run(
            ["/bin/sh", "-c", run.args],
            cwd=context,
            env=build_env,
            capture_output=True,
            text=True,
            timeout=480,
            check=False,
        )
        assert done.returncode == 0, f"RUN {run.args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    # What COPY --from=build carries over: the service, its bytecode, and no pip.
    assert (prefix / "bin" / "spmon").is_file()
    assert not (prefix / "bin" / "pip").exists(), "the runtime venv should carry no pip"
    assert list(prefix.glob("lib/python3.*/site-packages/monitor/__pycache__/*.pyc")), (
        "bytecode is not baked at build time; a read-only image would recompile on every start"
    )
    before = _snapshot(prefix)

    # Runtime stage: the state dir as created for USER, ENV (paths moved), WORKDIR,
    # USER, ENTRYPOINT + CMD. Only the listen address differs: a free loopback port.
    state.mkdir(parents=True)
    if user is not None:
        os.chown(state, *user)
    run_env = child_env()
    for key, value in runtime.env().items():
        run_env[key] = _remap(value.replace("$PATH", os.environ["PATH"]), mapping)
    entrypoint = runtime.all("ENTRYPOINT")[0].exec_form()
    assert entrypoint is not None
    stack = spmon_stack(
        argv=entrypoint,
        env=run_env,
        root=image_root / "work",
        user=user,
        settings_env={"SPMON_STATE__PATH": run_env["SPMON_STATE__PATH"]},
        cwd=Path(_remap(_only(runtime, "WORKDIR"), mapping)),
    )

    # HEALTHCHECK, exactly as Docker would run it, but at the test's port.
    health = runtime.all("HEALTHCHECK")[0].exec_form()
    assert health is not None
    probe = [*health, "--url", f"{stack.base_url}/healthz"]
    healthy = subprocess.run(probe, env=run_env, capture_output=True, timeout=30, check=False)
    assert healthy.returncode == 0, f"{healthy}\n{stack.describe()}"
    closed = [*health, "--url", f"http://127.0.0.1:{free_port()}/healthz"]
    unhealthy = subprocess.run(closed, env=run_env, capture_output=True, timeout=30, check=False)
    assert unhealthy.returncode != 0, "healthcheck must fail when nothing answers"

    status, body = http_get(stack.metrics_url)
    assert status == 200 and "spmon_build_info{" in body

    # STOPSIGNAL: a clean exit well inside Docker's/Kubernetes' grace period.
    assert stack.spmon.stop(grace=30) == 0, stack.describe()
    assert Path(run_env["SPMON_STATE__PATH"]).is_file()
    assert _snapshot(prefix) == before, "spmon wrote into its installation at run time"
    if user is not None:
        owners = {p.stat().st_uid for p in state.iterdir()}
        assert owners == {SERVICE_UID}, "files in the state volume not owned by the service user"
