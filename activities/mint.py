"""The side effects of MintWorkflow. Careful with money: every transaction is saved before it is sent, marked sent
before `sendTransaction` is called, and never sent twice; a transaction is only rebuilt once the network refused it
or it is past its last ledger without having been included (then it can never be)."""

import asyncio

import asyncpg
from stellar_sdk import Keypair, TransactionEnvelope
from stellar_sdk import xdr as stellar_xdr
from temporalio import activity

from activities.attempts import heartbeating
from contracts.mint import (
    CheckedMint,
    ConfirmedMint,
    ConfirmMint,
    FailMint,
    MintStep,
    RecordedMint,
    RecordMint,
    SentMint,
    SignedMint,
)
from smol import mints
from smol.errors import (
    AlreadyMinted,
    InvalidMint,
    MintNotConfigured,
    MintRejected,
    MintUnreadable,
    StellarBusy,
    StellarRpcError,
)
from smol.settings import Settings
from smol.stellar import cosigned_invocation, mint_results, others_sign_until, read_mint, server_transaction
from smol.stellar_rpc import StellarRpc, result_code
from workflows.policies import MINT_CONFIRM_EVERY

STALE = ("txBAD_SEQ", "txTOO_LATE", "txTOO_EARLY")  # refused, never applied: build a new transaction


class MintActivities:
    def __init__(self, pool: asyncpg.Pool, rpc: StellarRpc, settings: Settings,
                 confirm_interval: float = MINT_CONFIRM_EVERY[0]):  # fmt: skip
        self.pool, self.rpc, self.settings = pool, rpc, settings
        self._server = Keypair.from_secret(settings.stellar_secret.get_secret_value()) if settings.minting else None
        self.confirm_interval = confirm_interval

    def _server_key(self) -> Keypair:
        if self._server is None:
            raise MintNotConfigured("minting is not configured on this worker")
        return self._server

    @activity.defn
    async def check_mint(self, data: MintStep) -> CheckedMint:
        """The request, checked again where it is executed: the transaction and the smols' state."""
        mint = await mints.get(self.pool, data.mint_id)
        await mints.set_status(self.pool, data.mint_id, "checking")
        request = read_mint(
            mint["client_xdr"], passphrase=self.settings.stellar_network_passphrase,
            contract_id=self.settings.contract_id, issuer=self.settings.issuer, batch=mint["batch"],
            max_batch=self.settings.mint_max_batch,
        )  # fmt: skip
        if sorted(request.smol_ids) != sorted(mint["smol_ids"]):
            raise InvalidMint("the transaction's salts are not the requested smols")
        minted = await mints.minted_elsewhere(self.pool, request.smol_ids)
        if minted:
            raise AlreadyMinted(f"smol {minted[0]} is already minted")
        return CheckedMint(smol_ids=request.smol_ids)

    @activity.defn
    async def sign_mint(self, data: MintStep) -> SignedMint:
        """Co-sign and wrap the client's invocation in a transaction of the server's account, and save it; a mint
        that already has a live transaction gets that one back instead of a new one."""
        live = await mints.live_transaction(self.pool, data.mint_id)
        if live is not None:
            return SignedMint(tx_hash=live["hash"], max_ledger=live["max_ledger"])
        server, passphrase = self._server_key(), self.settings.stellar_network_passphrase
        mint = await mints.get(self.pool, data.mint_id)
        await mints.set_status(self.pool, data.mint_id, "signing")
        ledger = await self.rpc.latest_ledger()
        sequence = await self.rpc.sequence_of(server.public_key)
        operation = cosigned_invocation(mint["client_xdr"], server=server, passphrase=passphrase,
                                        auth_valid_until=ledger + self.settings.mint_auth_ledgers)  # fmt: skip
        latest = ledger + self.settings.mint_tx_ledgers
        max_ledger = min(latest, others_sign_until(operation, server.public_key) or latest)  # (the user's expiry)
        if max_ledger < ledger + 2:
            raise MintRejected(f"your authorization expires at ledger {max_ledger}, too soon for the transaction "
                               f"to land (the network is at {ledger}): sign it for longer")  # fmt: skip
        trial = server_transaction(operation, server=server, sequence=sequence, passphrase=passphrase,
                                   max_ledger=max_ledger, fee=self.settings.mint_max_fee)  # fmt: skip
        resources, resource_fee = await self._simulated(trial)
        fee = self.settings.mint_inclusion_fee + resource_fee
        if fee > self.settings.mint_max_fee:
            raise MintRejected(f"the mint would cost {fee} stroops, over SMOL_MINT_MAX_FEE")
        envelope = server_transaction(operation, server=server, sequence=sequence, passphrase=passphrase,
                                      max_ledger=max_ledger, fee=fee, soroban_data=resources)  # fmt: skip
        await mints.save_transaction(self.pool, data.mint_id, envelope.hash_hex(), envelope.to_xdr(), max_ledger)
        await mints.set_status(self.pool, data.mint_id, "signed", envelope.hash_hex())
        return SignedMint(tx_hash=envelope.hash_hex(), max_ledger=max_ledger)

    async def _simulated(self, trial: TransactionEnvelope) -> tuple[stellar_xdr.SorobanTransactionData, int]:
        """The resources and resource fee the mint needs, from a simulation that checks every signature and runs the
        contract (`authMode: enforce`). The server pays the fee even for a transaction that fails on chain: one the
        simulation refuses is never sent, and what it declares and pays comes from here, never from the client."""
        answer = await self.rpc.simulate(trial.to_xdr(), auth_mode="enforce")
        if answer.get("error"):
            raise MintRejected(f"the network's simulation refused the mint: {str(answer['error'])[:300]}")
        if answer.get("restorePreamble"):
            raise MintRejected("ledger entries the mint needs are archived: an operator must restore them first")
        try:
            return (stellar_xdr.SorobanTransactionData.from_xdr(answer["transactionData"]),
                    int(answer["minResourceFee"]))  # fmt: skip
        except Exception:
            raise StellarRpcError("simulateTransaction answered without readable transactionData") from None

    @activity.defn
    async def submit_mint(self, data: MintStep) -> SentMint:
        """Send the saved transaction once. Its hash is looked up first; it is marked sent before the call, so an
        unclear answer (timeout, lost connection) goes on to confirming, never to sending again."""
        row = await mints.transaction(self.pool, data.tx_hash)
        if row["state"] != "signed":
            return SentMint(outcome="sent" if row["state"] in ("sent", "done") else "stale", detail=row["state"])
        known = await self.rpc.transaction(data.tx_hash)
        if known.get("status") != "NOT_FOUND":
            await mints.set_transaction_state(self.pool, data.tx_hash, "sent")
            return SentMint(outcome="sent", detail="already on the network")
        await mints.set_transaction_state(self.pool, data.tx_hash, "sent")
        await mints.set_status(self.pool, data.mint_id, "submitting")
        try:
            answer = await self.rpc.send(row["xdr"])
        except StellarRpcError as exc:
            if not exc.retryable:
                await mints.set_transaction_state(self.pool, data.tx_hash, "rejected")
                raise MintRejected(str(exc)) from None
            activity.logger.warning("mint %s: unclear answer to sendTransaction (%s); confirming", data.mint_id, exc)
            return SentMint(outcome="sent", detail="unclear answer")
        status = answer.get("status")
        if status in ("PENDING", "DUPLICATE"):
            return SentMint(outcome="sent", detail=status)
        if status == "TRY_AGAIN_LATER":
            await mints.set_transaction_state(self.pool, data.tx_hash, "signed")  # not accepted: may be sent again
            raise StellarBusy("the network asked to try again later")
        code = result_code(answer.get("errorResultXdr"))
        await mints.set_transaction_state(self.pool, data.tx_hash, "rejected")
        if code in STALE:
            return SentMint(outcome="stale", detail=code)
        raise MintRejected(f"the network refused the mint transaction: {code}")

    @activity.defn
    async def confirm_mint(self, data: ConfirmMint) -> ConfirmedMint:
        """Poll getTransaction with backoff until it is SUCCESS or FAILED, or provably EXPIRED: not found after the
        network passed the transaction's last ledger."""
        await mints.set_status(self.pool, data.mint_id, "confirming")
        interval = self.confirm_interval
        async with heartbeating():
            while True:
                answer = await self.rpc.transaction(data.tx_hash)
                status = answer.get("status")
                if status == "SUCCESS":
                    return ConfirmedMint(status="SUCCESS", return_value_xdr=answer.get("returnValueXdr"))
                if status == "FAILED":
                    await mints.set_transaction_state(self.pool, data.tx_hash, "done")
                    return ConfirmedMint(status="FAILED", result=result_code(answer.get("resultXdr")))
                if int(answer.get("latestLedger") or 0) > data.max_ledger:
                    await mints.set_transaction_state(self.pool, data.tx_hash, "expired")
                    return ConfirmedMint(status="EXPIRED")
                await asyncio.sleep(interval)
                interval = min(interval * MINT_CONFIRM_EVERY[1], MINT_CONFIRM_EVERY[2])

    @activity.defn
    async def record_mint(self, data: RecordMint) -> RecordedMint:
        mint = await mints.get(self.pool, data.mint_id)
        try:
            results = mint_results(data.return_value_xdr, list(mint["smol_ids"]), issuer=self.settings.issuer,
                                   passphrase=self.settings.stellar_network_passphrase)  # fmt: skip
        except Exception as exc:
            raise MintUnreadable(f"the mint's return value: {exc}") from None
        await mints.finish(self.pool, data.mint_id, results, data.tx_hash)
        return RecordedMint(tokens={smol_id: list(pair) for smol_id, pair in results.items()})

    @activity.defn
    async def fail_mint(self, data: FailMint) -> None:
        await mints.fail(self.pool, data.mint_id, data.error)

    def all(self) -> list:
        return [self.check_mint, self.sign_mint, self.submit_mint, self.confirm_mint, self.record_mint, self.fail_mint]
