"""Pixellab's pixflux image generation (https://api.pixellab.ai/v1/generate-image-pixflux), 64×64, with the
original service's style settings."""

import base64
import binascii

import httpx

from activities.providers.http import json_of, send
from smol.errors import ProviderError

SERVICE = "pixellab"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PixellabImage:
    name = "pixellab"

    def __init__(self, http: httpx.AsyncClient, api_key: str, base_url: str = "https://api.pixellab.ai/v1"):
        self.http, self._key, self.base_url = http, api_key, base_url.rstrip("/")

    async def generate(self, prompt: str, seed: int) -> bytes:
        body = {
            "description": prompt,
            "negative_description": "blurry. dithering. photorealism.",
            "image_size": {"width": 64, "height": 64},
            "text_guidance_scale": 8,
            "outline": "selective outline",
            "shading": "basic shading",
            "detail": "medium detail",
            "view": "low top-down",
            "direction": "south",
            "seed": seed % 2**31,
        }
        response = await send(self.http, SERVICE, "POST", f"{self.base_url}/generate-image-pixflux", json=body,
                              headers={"Authorization": f"Bearer {self._key}"}, secret=self._key)  # fmt: skip
        try:
            png = base64.b64decode(json_of(response, SERVICE)["image"]["base64"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            raise ProviderError(f"{SERVICE} answered without an image") from None
        if not png.startswith(PNG_SIGNATURE):
            raise ProviderError(f"{SERVICE} sent an image that is not a PNG")
        return png
