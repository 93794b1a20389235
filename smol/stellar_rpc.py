"""A small client for the Stellar RPC JSON-RPC API (the calls the mint pipeline and `smol mint` need)."""

import base64
import itertools

import httpx
from stellar_sdk import Keypair
from stellar_sdk import xdr as stellar_xdr

from smol.errors import StellarRpcError


class StellarRpc:
    def __init__(self, http: httpx.AsyncClient, url: str, relay_url: str | None = None):
        self.http, self.url, self.relay_url = http, url, relay_url or url
        self._ids = itertools.count(1)

    async def call(self, method: str, params: dict | None = None, url: str | None = None) -> dict:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or {}}
        try:
            response = await self.http.post(url or self.url, json=body)
        except httpx.TimeoutException:
            raise StellarRpcError(f"Stellar RPC {method} did not answer in time") from None
        except httpx.TransportError as exc:
            raise StellarRpcError(f"Stellar RPC could not be reached ({type(exc).__name__})") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise StellarRpcError(f"Stellar RPC {method} answered {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise StellarRpcError(f"Stellar RPC {method} answered something that is not JSON") from None
        if not isinstance(answer, dict) or "error" in answer or not isinstance(answer.get("result"), dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise StellarRpcError(f"Stellar RPC {method} refused: {error}", retryable=False)
        return answer["result"]

    async def latest_ledger(self) -> int:
        return int((await self.call("getLatestLedger"))["sequence"])

    async def sequence_of(self, account: str) -> int:
        key = stellar_xdr.LedgerKey(
            stellar_xdr.LedgerEntryType.ACCOUNT,
            account=stellar_xdr.LedgerKeyAccount(Keypair.from_public_key(account).xdr_account_id()),
        )
        result = await self.call("getLedgerEntries", {"keys": [key.to_xdr()]})
        entries = result.get("entries") or []
        if not entries:
            raise StellarRpcError(f"account {account} does not exist on this network", retryable=False)
        return stellar_xdr.LedgerEntryData.from_xdr(entries[0]["xdr"]).account.seq_num.sequence_number.int64

    async def simulate(self, transaction_xdr: str, auth_mode: str | None = None) -> dict:
        """simulateTransaction; `auth_mode="enforce"` checks the authorization entries' signatures as the network
        would. A refusal comes back as the result's `error`, not as a JSON-RPC error."""
        params = {"transaction": transaction_xdr, **({"authMode": auth_mode} if auth_mode else {})}
        return await self.call("simulateTransaction", params)

    async def send(self, transaction_xdr: str) -> dict:
        """sendTransaction, through the relay when one is configured."""
        return await self.call("sendTransaction", {"transaction": transaction_xdr}, url=self.relay_url)

    async def transaction(self, tx_hash: str) -> dict:
        return await self.call("getTransaction", {"hash": tx_hash})


def result_code(result_xdr: str | None) -> str:
    """The result code in a TransactionResult, e.g. `txBAD_SEQ` (or what the RPC sent, when it is not one)."""
    if not result_xdr:
        return "unknown"
    try:
        code = stellar_xdr.TransactionResult.from_xdr(result_xdr).result.code
        return code.name
    except Exception:
        try:
            return base64.b64decode(result_xdr).decode("utf-8", errors="replace")[:100]
        except Exception:
            return "unknown"
