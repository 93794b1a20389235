"""Provider base URLs work written either way, with or without the version path (`/v1` for Pixellab and Replicate,
`/client/v4` for Workers AI; ElevenLabs' adapter adds `/v1` itself, so a URL with it works too)."""

import pytest

from activities.providers.pixellab import PixellabImage
from smol.settings import Settings
from tests.fakes import FakePixellab

FORMS = {
    "pixellab_url": (["https://api.pixellab.ai", "https://api.pixellab.ai/", "https://api.pixellab.ai/v1",
                      "https://api.pixellab.ai/v1/"], "https://api.pixellab.ai/v1"),
    "replicate_url": (["https://api.replicate.com", "https://api.replicate.com/v1/"], "https://api.replicate.com/v1"),
    "cloudflare_url": (["https://api.cloudflare.com", "https://api.cloudflare.com/client/v4",
                        "https://api.cloudflare.com/client/v4/"], "https://api.cloudflare.com/client/v4"),
    "elevenlabs_url": (["https://api.elevenlabs.io", "https://api.elevenlabs.io/v1", "https://api.elevenlabs.io/v1/",
                        "https://api.elevenlabs.io/"], "https://api.elevenlabs.io"),
}  # fmt: skip


@pytest.mark.parametrize("field", list(FORMS))
def test_every_form_of_a_provider_url_is_kept_as_its_adapter_joins_it(field, monkeypatch):
    written, kept = FORMS[field]
    for url in written:
        assert getattr(Settings(**{field: url}), field) == kept, url
        monkeypatch.setenv(f"SMOL_{field.upper()}", url)
        assert getattr(Settings(), field) == kept, url
    assert getattr(Settings(), field) == kept  # the defaults are already in the kept form


def test_a_host_served_under_a_path_keeps_it():
    assert Settings(pixellab_url="http://gateway:8080/pixellab").pixellab_url == "http://gateway:8080/pixellab/v1"


@pytest.mark.parametrize("written", ["{url}", "{url}/v1"])
async def test_pixellab_answers_with_either_form(provider_client, written):
    fake = FakePixellab()
    try:
        url = Settings(pixellab_url=written.format(url=fake.url)).pixellab_url
        assert await PixellabImage(provider_client, FakePixellab.KEY, url).generate("a frog", 7)
    finally:
        fake.close()
