"""The OpenAPI document is valid 3.1, and schemathesis finds no 5xx and no answer that breaks
it, for every operation, against a running service polling the simulator (with the admin
token, so writes are exercised too)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from monitor.web.openapi import DOCUMENT
from tests.web.conftest import ADMIN, RunFactory, call

EXAMPLES = os.environ.get("SPMON_SCHEMATHESIS_EXAMPLES", "15")
"""Examples per operation: enough to reach every status each operation documents, few
enough for the run to stay well under a minute."""


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


async def test_the_served_document_is_the_document(running: RunFactory) -> None:
    run = await running(1)
    status, _, served = await call("GET", run.base + "/openapi.json")
    assert status == 200 and served == DOCUMENT


@pytest.mark.slow
@pytest.mark.timeout(120)  # one schemathesis run over every operation: the one long test here
async def test_schemathesis_finds_no_server_error_and_no_schema_break(
    running: RunFactory, tmp_path: Path
) -> None:
    st = shutil.which("st") or shutil.which("schemathesis")
    st_cmd = [st] if st is not None else [sys.executable, "-m", "schemathesis.cli"]
    run = await running(5)
    proc = await asyncio.create_subprocess_exec(
        *st_cmd,
        "run",
        run.base + "/openapi.json",
        "--url",
        run.base,
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        EXAMPLES,
        "--seed",
        "1",
        "--header",
        f"Authorization: Bearer {ADMIN}",
        "--request-timeout",
        "10",
        "--no-color",
        "--generation-database",
        "none",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    out, _ = await proc.communicate()
    report = out.decode()
    assert proc.returncode == 0, report[-6000:]
    assert ADMIN not in report.replace(f"Bearer {ADMIN}", "")
