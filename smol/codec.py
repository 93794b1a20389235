"""Encrypted Temporal payloads: AES-256-GCM, the key id in the payload metadata, several keys for rotation.

Every payload the API, the worker and the CLI write (workflow and activity inputs and results, signals, queries,
the Web UI summary, failure details) is sealed with the key `SMOL_CODEC_KEY_ID`; any key of `SMOL_CODEC_KEYS`
opens it. Payloads that are not encrypted (runs started before the codec, replay fixtures) pass through.
Search attributes are not payloads the codec sees: they stay plain, since they are filters.
"""

import base64
import binascii
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(ValueError):
    """A payload this process cannot open: an unknown key id, the wrong key, or altered bytes."""


def parse_key(key_id: str, text: str) -> bytes:
    """The 32 bytes of a base64 key, or a message naming the key id."""
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ValueError(f"SMOL_CODEC_KEYS[{key_id!r}] must be the base64 of 32 random bytes (openssl rand -base64 32)")
    return key


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], key_id: str):
        if key_id not in keys:
            raise ValueError(f"SMOL_CODEC_KEY_ID {key_id!r} is not a key of SMOL_CODEC_KEYS ({', '.join(keys)})")
        self.key_id = key_id
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == ENCODING:
            return payload  # already sealed (the remote codec's /encode may be handed one)
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.key_id].encrypt(nonce, payload.SerializeToString(), self.key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(f"payload encrypted with unknown key id {key_id!r}: add that key to SMOL_CODEC_KEYS")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
        except (InvalidTag, ValueError):
            raise CodecError(f"payload under key id {key_id!r} does not open: wrong key or altered bytes") from None
        return Payload.FromString(plain)


def codec_from(settings) -> EncryptionCodec:
    """The codec of `Settings` (codec_keys, codec_key_id)."""
    keys = {kid: parse_key(kid, key.get_secret_value()) for kid, key in settings.codec_keys.items()}
    return EncryptionCodec(keys, settings.codec_key_id)
