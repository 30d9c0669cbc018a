#!/bin/sh
# Install spmon into a virtual environment from hash-pinned lock files.
#
#   install.sh deps SRC PREFIX   create the venv PREFIX, install requirements.lock into it
#   install.sh app  SRC PREFIX   build the spmon wheel from SRC and install it into PREFIX
#
# SRC is a directory with pyproject.toml, README.md, monitor/, requirements.lock and
# deploy/docker/build-requirements.lock (the Docker build stage's /src).
#
# The Dockerfile runs exactly these two steps (two layers, so a code change does not
# reinstall the dependencies), and tests/deploy/test_image_steps.py replays the
# Dockerfile's RUN lines with this script outside Docker. Nothing is resolved here:
# every distribution, setuptools included, comes from a lock file with hashes, and the
# wheel is built without build isolation so that no unpinned build backend is fetched.
#
# PYTHON        interpreter the venv is based on (default: python3)
# BUILD_PYTHON  interpreter that runs pip and the build (default: $PYTHON); pip targets
#               the venv with --python, so the runtime venv carries no pip at all
set -eu

step=${1:?usage: install.sh deps|app SRC PREFIX}
src=${2:?usage: install.sh deps|app SRC PREFIX}
prefix=${3:?usage: install.sh deps|app SRC PREFIX}
python=${PYTHON:-python3}
build_python=${BUILD_PYTHON:-$python}

pip_into_prefix() {
    "$build_python" -m pip --python "$prefix/bin/python" "$@"
}

case "$step" in
deps)
    "$python" -m venv --without-pip "$prefix"
    pip_into_prefix install --require-hashes --no-deps -r "$src/requirements.lock"
    ;;
app)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$build_python" -m venv "$work/build"
    "$work/build/bin/python" -m pip install --require-hashes --no-deps \
        -r "$src/deploy/docker/build-requirements.lock"
    "$work/build/bin/python" -m pip wheel --no-build-isolation --no-deps \
        --wheel-dir "$work/wheels" "$src"
    pip_into_prefix install --no-index --no-deps "$work"/wheels/spmon-*.whl
    # The lock must cover every requirement of the wheel: fail the build, not the start.
    pip_into_prefix check
    "$prefix/bin/spmon" --help >/dev/null
    ;;
*)
    echo "install.sh: unknown step '$step' (expected deps or app)" >&2
    exit 64
    ;;
esac
