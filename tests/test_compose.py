"""docker-compose.temporal.yml is valid for Docker Compose and has every service the README promises."""

import os
import shutil
import subprocess

import pytest

from commands.stack import ROOT

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="needs Debian's docker-compose (.ci/run installs it)")
ENV = {**os.environ, "SMOL_JWT_SECRET": "x" * 32, "SMOL_WEBHOOK_SECRET": "y" * 32}


def compose(*args: str, env=ENV) -> subprocess.CompletedProcess:
    return subprocess.run([COMPOSE, "-f", str(ROOT / "docker-compose.temporal.yml"), *args], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_compose_file_validates():
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_has_every_service_and_a_scalable_worker():
    services = set(compose("config", "--services").stdout.split())
    assert services == {"postgres", "temporal", "temporal-ui", "minio", "minio-bucket", "api", "worker"}
    config = compose("config").stdout
    worker = config[config.index("  worker:") :]
    assert "container_name" not in worker and "ports" not in worker.split("\n  volumes:")[0]


def test_compose_refuses_to_start_without_secrets():
    env = {k: v for k, v in ENV.items() if k not in ("SMOL_JWT_SECRET",)}
    result = compose("config", "-q", env=env)
    assert result.returncode != 0 and "SMOL_JWT_SECRET" in result.stderr
