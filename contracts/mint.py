"""Inputs and results of MintWorkflow and its activities (only ids, hashes and XDR strings travel through Temporal;
the server's key never does)."""

from dataclasses import dataclass, field


@dataclass
class MintInput:
    mint_id: str


@dataclass
class MintResult:
    mint_id: str
    tx_hash: str
    tokens: dict[str, list[str]] = field(default_factory=dict)  # smol id -> [token, amm]


@dataclass
class MintStatus:
    status: str  # running, minted, failed
    step: str | None
    tx_hash: str | None = None
    builds: int = 0
    error: dict | None = None


@dataclass
class MintStep:
    mint_id: str
    tx_hash: str = ""


@dataclass
class CheckedMint:
    smol_ids: list[str]


@dataclass
class SignedMint:
    tx_hash: str
    max_ledger: int


@dataclass
class SentMint:
    outcome: str  # sent, stale (refused for a sequence or ledger reason: build again)
    detail: str = ""


@dataclass
class ConfirmMint:
    mint_id: str
    tx_hash: str
    max_ledger: int


@dataclass
class ConfirmedMint:
    status: str  # SUCCESS, FAILED, EXPIRED
    return_value_xdr: str | None = None
    result: str = ""


@dataclass
class RecordMint:
    mint_id: str
    tx_hash: str
    return_value_xdr: str


@dataclass
class RecordedMint:
    tokens: dict[str, list[str]]


@dataclass
class FailMint:
    mint_id: str
    error: str
