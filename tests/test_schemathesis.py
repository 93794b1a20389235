"""Schemathesis over the whole OpenAPI document against the running API: no 5xx, responses match their schemas."""

import subprocess
import sys
from pathlib import Path

import pytest

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")

pytestmark = pytest.mark.slow


def test_openapi_fuzz_finds_no_server_errors_and_no_schema_violations(stack, tmp_path):
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{stack.api_url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_headers_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--generation-deterministic",
            "--request-timeout",
            "30",
            "--header",
            f"Authorization: Bearer {stack.token('GFUZZ')}",
            "--header",
            "Origin: http://localhost:5173",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
