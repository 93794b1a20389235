"""The `smol` command against the running stack."""

import subprocess
import sys
from pathlib import Path

import pytest

from smol.tokens import verify_token

SMOL = str(Path(sys.executable).parent / "smol")


def _run(stack, *args, timeout=120):
    env = {**stack.env, "SMOL_API_URL": stack.api_url}
    return subprocess.run([SMOL, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_token_is_signed_with_the_configured_secret(stack):
    result = _run(stack, "token", "GTOKEN")
    assert result.returncode == 0
    assert verify_token(stack.settings, result.stdout.strip())["sub"] == "GTOKEN"


@pytest.mark.slow
def test_create_wait_then_status(stack):
    created = _run(stack, "create", "a chiptune cat", "--instrumental", "--wait")
    assert created.returncode == 0, created.stderr
    smol_id = created.stdout.strip()
    assert len(smol_id) == 64 and "done" in created.stderr
    status = _run(stack, "status", smol_id)
    assert status.returncode == 0 and "Cat" in status.stdout
    assert "paid calls: none" in status.stdout  # the local providers cost nothing


def test_status_of_unknown_smol_fails_clearly(stack):
    result = _run(stack, "status", "0" * 64)
    assert result.returncode == 1 and "no smol" in result.stderr


def test_create_reports_bad_input_and_unreachable_api(stack):
    bad = _run(stack, "create", "x" * 400, "--instrumental")
    assert bad.returncode == 1 and "380" in bad.stderr
    env_down = {**stack.env, "SMOL_API_URL": "http://127.0.0.1:9"}
    down = subprocess.run([SMOL, "create", "hello"], env=env_down, capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "cannot reach the API" in down.stderr
