"""Builds the provider chains that settings name, one per kind of AI call."""

from activities.providers import local
from activities.providers.aisonggenerator import AiSongGenerator
from activities.providers.chain import Chain
from activities.providers.cloudflare import WorkersAI
from activities.providers.elevenlabs import ElevenLabsSongs
from activities.providers.interfaces import Providers
from activities.providers.pixellab import PixellabImage
from activities.providers.replicate import ReplicateSongs


def build_providers(settings, store, http=None) -> Providers:
    """The chains named in settings. Fails at start-up for an unknown provider or a missing key."""
    def secret(value, name: str) -> str:
        if value is None:
            raise ValueError(f"provider {name!r} is configured but its API key setting is empty")
        return value.get_secret_value()

    def song_service(source: str):
        if not settings.songgen_url:
            raise ValueError(f"provider {source!r} is configured but SMOL_SONGGEN_URL is empty")
        key = settings.songgen_api_key.get_secret_value() if settings.songgen_api_key else ""
        return AiSongGenerator(http, settings.songgen_url, key, source)

    def workers_ai():
        if not settings.cloudflare_account_id:
            raise ValueError("provider 'cloudflare' is configured but SMOL_CLOUDFLARE_ACCOUNT_ID is empty")
        token = secret(settings.cloudflare_api_token, "cloudflare")
        return WorkersAI(http, settings.cloudflare_account_id, token, settings.cloudflare_url)

    def replicate(model: str, version: str):
        token = secret(settings.replicate_api_token, model)
        return ReplicateSongs(http, token, version, model, settings.replicate_url, settings.song_seconds)

    def make(step: str, name: str):
        factories = {
            ("image", "local"): local.LocalImage,
            ("image", "pixellab"): lambda: PixellabImage(
                http, secret(settings.pixellab_api_key, name), settings.pixellab_url
            ),
            ("lyrics", "aisonggenerator"): lambda: song_service("aisonggenerator"),
            ("song", "aisonggenerator"): lambda: song_service("aisonggenerator"),
            ("song", "diffrhythm"): lambda: song_service("diffrhythm"),
            ("song", "musicgen"): lambda: replicate("musicgen", settings.replicate_musicgen_version),
            ("song", "riffusion"): lambda: replicate("riffusion", settings.replicate_riffusion_version),
            ("song", "elevenlabs"): lambda: ElevenLabsSongs(
                http, secret(settings.elevenlabs_api_key, name), store, settings.elevenlabs_url,
                settings.elevenlabs_output_format, settings.elevenlabs_model, settings.song_seconds,
            ),
            ("describe", "cloudflare"): workers_ai,
            ("nsfw", "cloudflare"): workers_ai,
            ("lyrics", "cloudflare"): workers_ai,
            ("describe", "local"): local.LocalDescribe,
            ("lyrics", "local"): local.LocalLyrics,
            ("nsfw", "local"): local.LocalNsfw,
            ("song", "local"): lambda: local.LocalSongs(store=store, jobs_root=settings.data_dir / "local-songs",
                                                        seconds=settings.song_seconds, delay=settings.local_song_delay),
        }  # fmt: skip
        if (step, name) not in factories:
            known = sorted(n for s, n in factories if s == step)
            raise ValueError(f"unknown {step} provider {name!r}; known: {', '.join(known)}")
        return factories[(step, name)]()

    def chain(step: str) -> Chain:
        return Chain([make(step, name) for name in settings.chain(step)], attempts=settings.provider_attempts)

    return Providers(
        image=chain("image"),
        describe=chain("describe"),
        lyrics=chain("lyrics"),
        nsfw=chain("nsfw"),
        songs=chain("song"),
    )
