"""Schemathesis over the whole OpenAPI document against the running API, with every check: no 5xx, responses and
their headers match the schema, schema-valid requests are accepted and invalid ones refused, `Allow` on every 405."""

import subprocess
import sys
from pathlib import Path

import pytest

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
# Bodies whose validity no schema can express (a WebAuthn credential, a transaction signed for these ids, smols that
# exist, a webhook host that resolves): a schema-valid but made-up one is refused with 400, so these operations skip
# only the "valid data is accepted" check.
SEMANTIC_BODIES = "^(login|mint_one|mint_many|create_mixtape|update_mixtape|create_smol)_"

pytestmark = pytest.mark.slow


def _schemathesis(stack, cwd: Path, *options: str) -> str:
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{stack.api_url}/openapi.json",
            "--checks",
            "all",
            *options,
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
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Tested: 0" not in result.stdout, result.stdout[-3000:]
    return result.stdout


def test_openapi_fuzz_passes_every_check(stack, tmp_path):
    _schemathesis(stack, tmp_path, "--exclude-operation-id-regex", SEMANTIC_BODIES)


def test_bodies_no_schema_can_validate_pass_every_other_check(stack, tmp_path):
    _schemathesis(stack, tmp_path, "--include-operation-id-regex", SEMANTIC_BODIES,
                  "--exclude-checks", "positive_data_acceptance")  # fmt: skip
