"""A Python client generated from the running API's /openapi.json (openapi-python-client) drives a smol with an API
key: create (idempotently, with metadata) → poll → download."""

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

GENERATOR = str(Path(sys.executable).parent / "openapi-python-client")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol_client(stack, tmp_path_factory):
    """The generated package, imported as `smol_client`."""
    root = tmp_path_factory.mktemp("generated")
    (root / "openapi.json").write_text(httpx.get(f"{stack.api_url}/openapi.json").text)
    # Media bodies are bytes to the client (it knows no audio/* type of its own).
    (root / "config.json").write_text(json.dumps({"content_type_overrides": {
        "audio/mpeg": "application/octet-stream", "image/png": "application/octet-stream"}}))  # fmt: skip
    result = subprocess.run([GENERATOR, "generate", "--path", "openapi.json", "--meta", "none", "--config",
                             "config.json", "--output-path", "smol_client"], cwd=root, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Unsupported" not in result.stdout + result.stderr, result.stdout[-3000:]
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("smol_client")
    finally:
        sys.path.remove(str(root))


def test_the_generated_client_creates_polls_and_downloads_with_an_api_key(stack, smol_client):
    from smol_client.api.keys import create_key_keys_post
    from smol_client.api.media import get_song_song_music_id_mp3_get
    from smol_client.api.smols import create_smol_post, get_smol_id_get, list_created_created_get
    from smol_client.models import CreateSmol, NewKey, SmolDetail

    address = "GCLIENT" + str(time.time_ns())[-8:]
    with smol_client.AuthenticatedClient(base_url=stack.api_url, token=stack.token(address)) as session:
        key = create_key_keys_post.sync(client=session, body=NewKey(name="generated client")).key

    client = smol_client.AuthenticatedClient(base_url=stack.api_url, token=key, raise_on_unexpected_status=True)
    body = CreateSmol.from_dict({"prompt": "a generated frog", "title": "Generated Frog",
                                 "metadata": {"campaign_id": "gen-1"}})  # fmt: skip
    smol_id = create_smol_post.sync(client=client, body=body, idempotency_key=f"gen-{address}")
    assert len(smol_id) == 64
    assert create_smol_post.sync(client=client, body=body, idempotency_key=f"gen-{address}") == smol_id

    deadline, progress_seen = time.monotonic() + 90, False
    while True:
        detail = get_smol_id_get.sync(client=client, id=smol_id)
        assert isinstance(detail, SmolDetail), detail
        if detail.d1:
            break
        progress_seen = progress_seen or bool(detail.progress)
        assert time.monotonic() < deadline, detail.to_dict()
        time.sleep(0.3)
    assert detail.d1.title == "Generated Frog" and detail.d1.address == address
    assert detail.kv_do["payload"]["metadata"] == {"campaign_id": "gen-1"}

    listed = list_created_created_get.sync(client=client)
    assert [(s.id, s.status) for s in listed.smols] == [(smol_id, "complete")]

    song = get_song_song_music_id_mp3_get.sync_detailed(client=client, music_id=detail.d1.song_2, download=True)
    assert song.status_code == 200 and len(song.content) > 1000
    assert song.headers["content-disposition"].startswith('attachment; filename="generated-frog-2.mp3"')
    print(f"\ngenerated client: smol {smol_id[:12]}, progress seen while polling: {progress_seen}")
