import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Built-in development secrets: fine on loopback (`make run`); API and worker refuse them elsewhere.
DEV_CODEC_KEY_ID = "dev"
DEV_CODEC_KEY = "c21vbC1kZXYtb25seS1jb2RlYy1rZXktMzItYnl0ZXM="  # base64 of b"smol-dev-only-codec-key-32-bytes"
API_SECRETS = ("SMOL_JWT_SECRET", "SMOL_WEBHOOK_SECRET", "SMOL_CODEC_KEYS")
WORKER_SECRETS = ("SMOL_WEBHOOK_SECRET", "SMOL_CODEC_KEYS")
HOW_TO_SET = {
    "SMOL_JWT_SECRET": "a long random string (openssl rand -hex 32)",
    "SMOL_WEBHOOK_SECRET": "a long random string (openssl rand -hex 32)",
    "SMOL_CODEC_KEYS": """'{"k1": "<openssl rand -base64 32>"}' and SMOL_CODEC_KEY_ID to k1""",
}

PROVIDER_VERSION_PATHS = {"pixellab_url": "/v1", "replicate_url": "/v1", "cloudflare_url": "/client/v4"}


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def command_line_host(argv: list[str]) -> str | None:
    """The `--host` a server was started with (uvicorn's), if any."""
    for i, arg in enumerate(argv):
        if arg == "--host" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--host="):
            return arg.split("=", 1)[1]
    return None


class Settings(BaseSettings):
    """Every knob of the service, read from `SMOL_*` environment variables (or a `.env` file)."""

    model_config = SettingsConfigDict(env_prefix="SMOL_", env_file=".env", extra="ignore")

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "smol"

    data_dir: Path = Path(".data")
    database_url: str | None = Field(
        default=None, description="Postgres URL; when unset, an embedded pgserver under data_dir/pg is used"
    )
    object_store: str = Field(
        default="", description="Directory for PNG/MP3 objects (default data_dir/objects), or s3://bucket/prefix"
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (R2, MinIO); None for AWS")
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_presign_media: bool = Field(default=False, description="Serve songs and covers by redirect to presigned URLs")
    media_accel_prefix: str | None = Field(
        default=None,
        pattern=r"^/[A-Za-z0-9_/-]*/$",
        description="behind nginx: answer media GETs with X-Accel-Redirect to this internal location",
    )

    webauthn_rp_ids: list[str] = Field(default=["localhost"], description="Relying-party ids passkeys may be bound to")
    webauthn_origins: list[str] = Field(
        default=["http://localhost:5173", "http://localhost:8000", "http://127.0.0.1:8000"],
        description="Origins a passkey ceremony may come from (never taken from the request)",
    )
    wallet_deployers: list[Annotated[str, Field(pattern=r"^[GC][A-Z2-7]{55}$")]] = Field(
        default=["GC2C7AWLS2FMFTQAHW3IBUB4ZXVP4E37XNLEF2IK7IVXBB6CMEPCSXFO"],  # passkey-kit's, seed sha256("kalepail")
        min_length=1,
        description="Accounts (or factory contracts) deploying passkey wallets; a registered address derives from one",
    )
    webhook_secret: SecretStr = SecretStr("dev-only-webhook-secret-set-SMOL_WEBHOOK_SECRET")
    webhooks_allow_private: bool = Field(default=False, description="Allow webhooks to loopback/private addresses")
    jwt_secret: SecretStr = SecretStr("dev-only-secret-set-SMOL_JWT_SECRET-in-production")
    jwt_days: int = 30
    max_event_streams: int = Field(
        default=1000, ge=1, description="Live event streams (GET /{id}/events) one API process keeps open at most; "
        "past it a new one is 503 with Retry-After",
    )  # fmt: skip
    max_event_streams_per_client: int = Field(
        default=16, ge=1, description="Of those, open at once by one caller: a signed-in address, else one client "
        "address (behind a proxy, uvicorn's --forwarded-allow-ips must name it for X-Forwarded-For to count)",
    )  # fmt: skip
    session_check_seconds: float = Field(
        default=30, ge=0, description="How long a session's passkey binding is taken as still valid before it is "
        "looked up again (a replaced binding's tokens stop working within this)",
    )  # fmt: skip
    wallet_check: Literal["required", "off"] = Field(
        default="required", description="required: registering a passkey asks the Stellar RPC who signs for its "
        "wallet (503 when it cannot say); off: no lookups, for development without a network",
    )  # fmt: skip
    wallet_check_timeout: float = Field(
        default=5, gt=0, description="Longest a sign-in waits for the Stellar RPC to say who signs for its wallet"
    )
    codec_keys: dict[str, SecretStr] = Field(
        default={DEV_CODEC_KEY_ID: SecretStr(DEV_CODEC_KEY)},
        description='Keys of the Temporal payload codec, JSON {"key id": "base64 of 32 bytes"}; '
        "keep retired ones so older runs stay readable",
    )
    codec_key_id: str = Field(default=DEV_CODEC_KEY_ID, description="The key of codec_keys that encrypts new payloads")
    codec_token: SecretStr | None = Field(default=None, description="Bearer secret that lets an operator use /codec/*")
    codec_cors_origins: list[str] = Field(
        default=["http://localhost:8233", "http://127.0.0.1:8233"],
        description="Temporal Web UI origins allowed to call /codec/* from the browser",
    )
    admin_addresses: list[str] = Field(default=[], description="Operators' addresses (codec and admin routes)")

    worker_metrics_address: str = Field(
        default="127.0.0.1:9464", description="host:port of the worker's Prometheus /metrics; empty turns it off"
    )
    worker_cached_workflows: int = Field(
        default=1000, ge=0, le=100_000, description="Runs a worker keeps in memory between their tasks (others are "
        "replayed from their history when their next task comes)",
    )  # fmt: skip
    worker_workflow_tasks: int = Field(
        default=8, ge=2, le=1000, description="Workflow tasks a worker runs at once (the SDK's default is 100). They "
        "share one interpreter: with many runs in flight, 100 at once each wait their turn past the 10 s task timeout, "
        "and a timed-out task is replayed from its history elsewhere, so the backlog grows instead of shrinking",
    )  # fmt: skip
    workflow_sandbox: bool = Field(
        default=True, description="Run workflow code in the SDK's sandbox (off: a run costs less memory to keep and "
        "half the CPU or less to replay; determinism is then left to the replay tests and the sandboxed test suite)",
    )  # fmt: skip
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#]+(/[^?#]*)?$",
        description="The API's public base URL (https://api.smol.xyz): song URLs in answers start with it; "
        "unset, they start with the request's own base URL",
    )
    cors_origins: list[str] = Field(
        default=[], description='Origins allowed to call with credentials, e.g. ["https://smol.xyz"]'
    )
    public_list_cache_seconds: float = Field(
        default=2.0, ge=0, le=15, description="Anonymous reads of public lists, search and similar are made "
        "afresh (in the background) once this old, and never served older than twice this (0: off)",
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Largest request body accepted (413 above)")
    creates_per_minute: int = Field(default=10, ge=1, description="Smols one address may start per minute (429 above)")
    count_once_seconds: float = Field(
        default=600, ge=0, description="A listener's plays of one song, and views of one smol, count once in this "
        "time (0: every request counts)",
    )  # fmt: skip
    registrations_per_hour: int = Field(
        default=10, ge=1, description="Passkeys one client address may register per hour (429 above): each new "
        "account has creates of its own",
    )  # fmt: skip

    image_providers: str = Field(default="local", description="Fallback chain, first choice first: pixellab,local")
    describe_providers: str = "local"
    lyrics_providers: str = "local"
    nsfw_providers: str = "local"
    song_providers: str = "local"
    provider_attempts: int = Field(default=2, ge=1, le=10, description="Quick tries of one provider before the next")
    provider_timeout: float = Field(
        default=300.0, gt=0, le=1500,
        description="Seconds one provider HTTP call may take: long enough for a slow provider that is still working "
        "(abandoning it would pay for the same work again); the activity heartbeats meanwhile",
    )
    max_paid_calls_per_step: int = Field(
        default=3, ge=1, le=20, description="Paid provider calls one step of one run may make; past it the step fails"
    )
    pixellab_api_key: SecretStr | None = None
    pixellab_url: str = "https://api.pixellab.ai/v1"
    cloudflare_account_id: str | None = None
    cloudflare_api_token: SecretStr | None = None
    cloudflare_url: str = "https://api.cloudflare.com/client/v4"
    elevenlabs_api_key: SecretStr | None = None
    elevenlabs_url: str = "https://api.elevenlabs.io"
    elevenlabs_output_format: str = Field(default="mp3_44100_128", pattern=r"^mp3_\d+_\d+$")
    elevenlabs_model: str = "music_v1"
    replicate_api_token: SecretStr | None = None
    replicate_url: str = "https://api.replicate.com/v1"
    replicate_musicgen_version: str = Field(
        default="671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb", description="meta/musicgen"
    )
    replicate_riffusion_version: str = Field(
        default="8cf61ea6c56afd61d8f5b9ffd14d7c216c0a93844ce2d82ac1c9ecc9c7f24e05", description="riffusion"
    )
    songgen_url: str | None = Field(default=None, description="Base URL of the AI Song Generator service")
    songgen_api_key: SecretStr | None = None

    song_seconds: int = Field(default=30, ge=1, le=180, description="Length of each local song")
    local_song_delay: float = Field(default=2.0, ge=0, description="Seconds a local song job takes to finish")
    song_poll_interval: float = Field(
        default=2.0,
        gt=0,
        description="Seconds between song status polls; up to 10 s one heartbeating activity "
        "polls in a loop, above that each poll is one activity attempt and the retry policy waits",
    )
    song_poll_window: float = Field(
        default=30.0, gt=0, description="Longest a heartbeating poll activity runs before reporting back"
    )
    song_stall_seconds: float = Field(
        default=600.0, gt=0, description="Give up on songs when none made progress for this long"
    )

    # Minting (Stellar)
    stellar_rpc_url: str = "https://soroban-testnet.stellar.org"
    stellar_relay_url: str | None = Field(default=None, description="send transactions here instead of the RPC")
    stellar_network_passphrase: str = "Test SDF Network ; September 2015"
    stellar_secret: SecretStr | None = Field(default=None, description="the server's key: co-signs and pays")
    contract_id: str | None = Field(default=None, description="the Smol contract (C...)")
    mint_issuer: str | None = Field(default=None, description="issuer of the smol assets; default the server's key")
    mint_max_fee: int = Field(default=10_000_000, ge=100, description="most stroops the server pays for one mint")
    mint_inclusion_fee: int = Field(default=10_000, ge=100, description="stroops the server bids for a mint's "
                                    "inclusion, on top of the resource fee its simulation needs")  # fmt: skip
    mint_auth_ledgers: int = Field(default=60, ge=2, le=1000, description="server signatures expire after this")
    mint_tx_ledgers: int = Field(default=30, ge=2, le=1000, description="a mint transaction expires after this")
    mint_max_batch: int = Field(default=20, ge=1, le=100)
    mints_per_hour: int = Field(default=20, ge=1, description="mint requests one address may make an hour (the "
                                "server pays each one's fee)")  # fmt: skip
    mixtapes_per_hour: int = Field(default=20, ge=1, description="mixtapes one address may make an hour (the public "
                                   "list shows the newest 100 of everyone's)")  # fmt: skip

    # SoundFlow catalog (issue 15)
    catalog_plan: Path | None = Field(default=None, description="The daily plan YAML (default: the one in the repo)")
    catalog_public_base_url: str | None = Field(
        default=None, pattern=r"^https?://[^?#]+/$",
        description="Free tracks' url is this + objectKey (a public bucket, a CDN); default our /catalog/ route",
    )  # fmt: skip
    catalog_schedule_id: str = "smol-catalog-daily"
    catalog_schedule: bool = Field(default=True, description="Create or update the daily schedule at worker start")
    catalog_catchup_hours: float = Field(default=48, gt=0, le=24 * 30, description="Make missed days up to this late")
    catalog_track_seconds: int | None = Field(default=None, ge=5, le=600, description="Scheduled tracks' length "
                                              "instead of the plan's")  # fmt: skip
    catalog_premium_providers: str = Field(
        default="local", description="Premium song chain, first choice first: musicgen,elevenlabs,local"
    )
    catalog_render_processes: int = Field(default=2, ge=1, le=32, description="Processes rendering tracks at once")
    catalog_free_quality: int = Field(default=7, ge=0, le=9, description="LAME quality of free tracks (7: fast)")
    catalog_premium_quality: int = Field(default=2, ge=0, le=9, description="LAME quality of premium tracks")
    catalog_signed_seconds: int = Field(default=3600, ge=60, le=7 * 86400, description="Signed URLs live this long")
    progress_cache_seconds: float = Field(default=10, ge=0, le=3600, description="How long the API reuses the "
                                          "recent step durations that progress estimates read")  # fmt: skip

    def dev_secrets(self) -> list[str]:
        """The variables whose built-in development value is in use."""
        fields = type(self).model_fields
        found = [f"SMOL_{n.upper()}" for n in ("jwt_secret", "webhook_secret") if getattr(self, n) == fields[n].default]
        key = self.codec_keys.get(self.codec_key_id)
        if key is not None and key.get_secret_value() == DEV_CODEC_KEY:
            found.append("SMOL_CODEC_KEYS")
        return found

    def refuse_dev_secrets(self, *hosts: str, uses: tuple[str, ...] = API_SECRETS) -> None:
        """Exit, saying what to set, when a built-in development secret among `uses` is in use and one of `hosts`
        (where the process listens, or what it connects to) is not loopback."""
        found = [name for name in self.dev_secrets() if name in uses]
        exposed = [host for host in hosts if not is_loopback(host)]
        if found and exposed:
            how = "; ".join(f"set {name} to {HOW_TO_SET[name]}" for name in found)
            raise SystemExit(
                f"refusing to run on {', '.join(exposed)} with built-in development secrets: {how}. "
                "(They are only accepted when bound to loopback, as `make run` is.)"
            )

    def temporal_host(self) -> str:
        return self.temporal_address.rsplit(":", 1)[0]

    def database_host(self) -> str:
        """The database server's host; `localhost` for the embedded one and Unix sockets."""
        if not self.database_url:
            return "localhost"
        url = urlsplit(self.database_url)
        host = url.hostname or parse_qs(url.query).get("host", [""])[0]
        return "localhost" if not host or host.startswith("/") else host

    @property
    def minting(self) -> bool:
        return bool(self.contract_id and self.stellar_secret)

    @property
    def issuer(self) -> str | None:
        if self.mint_issuer:
            return self.mint_issuer
        if self.stellar_secret:
            from stellar_sdk import Keypair

            return Keypair.from_secret(self.stellar_secret.get_secret_value()).public_key
        return None

    @field_validator("pixellab_url", "replicate_url", "cloudflare_url", "elevenlabs_url")
    @classmethod
    def _version_path(cls, url: str, info: ValidationInfo) -> str:
        """Provider base URLs are accepted with or without their version path and kept as each adapter joins them
        (ElevenLabs' adds `/v1` itself)."""
        version = PROVIDER_VERSION_PATHS.get(info.field_name, "")
        return url.rstrip("/").removesuffix(version or "/v1") + version

    def chain(self, step: str) -> list[str]:
        """The provider names of one step (`image`, `describe`, `lyrics`, `nsfw`, `song`), in order."""
        return [name.strip() for name in getattr(self, f"{step}_providers").split(",") if name.strip()]

    def object_root(self) -> Path:
        return Path(self.object_store) if self.object_store else self.data_dir / "objects"


@lru_cache
def get_settings() -> Settings:
    return Settings()
