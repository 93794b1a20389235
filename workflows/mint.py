"""MintWorkflow: check a client's mint transaction, co-sign it, submit it once, confirm it, record the tokens.

A transaction refused as stale (sequence, ledger bounds) or expired unconfirmed is never retried as is: a new one is
built (at most MINT_BUILDS, workflows/policies.py), which is safe because the old one can no longer be included.
"""

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.mint import MintActivities
    from contracts.mint import (
        ConfirmMint,
        FailMint,
        MintInput,
        MintResult,
        MintStatus,
        MintStep,
        RecordMint,
    )
    from smol.errors import MintExpired, MintFailed, to_temporal
    from workflows.policies import MINT_BUILDS, MINT_POLICIES


@workflow.defn(name="MintWorkflow")
class MintWorkflow:
    def __init__(self) -> None:
        self.step: str | None = None
        self.tx_hash: str | None = None
        self.builds = 0
        self.done = False
        self.error: dict | None = None

    async def _run(self, name: str, activity, arg):
        self.step = name
        return await workflow.execute_activity_method(activity, arg, **MINT_POLICIES[name].activity_options())

    @workflow.run
    async def run(self, data: MintInput) -> MintResult:
        try:
            result = await self._mint(data.mint_id)
        except (ActivityError, ApplicationError) as exc:
            cause = exc.cause if isinstance(exc, ActivityError) and isinstance(exc.cause, ApplicationError) else exc
            self.error = {"name": getattr(cause, "type", None) or type(cause).__name__, "message": str(cause)}
            await self._run("fail", MintActivities.fail_mint, FailMint(data.mint_id, f"{self.error['name']}: {cause}"))
            raise ApplicationError(f"mint failed at {self.step}: {cause}", type=self.error["name"],
                                   non_retryable=True) from exc  # fmt: skip
        self.step, self.done = None, True
        return result

    async def _mint(self, mint_id: str) -> MintResult:
        await self._run("check", MintActivities.check_mint, MintStep(mint_id))
        confirmed = None
        while confirmed is None or confirmed.status == "EXPIRED":
            if self.builds == MINT_BUILDS:
                raise to_temporal(MintExpired(f"no transaction was included after {MINT_BUILDS} tries"))
            self.builds += 1
            signed = await self._run("sign", MintActivities.sign_mint, MintStep(mint_id))
            self.tx_hash = signed.tx_hash
            sent = await self._run("submit", MintActivities.submit_mint, MintStep(mint_id, signed.tx_hash))
            if sent.outcome == "stale":
                confirmed = None
                continue
            confirmed = await self._run(
                "confirm", MintActivities.confirm_mint, ConfirmMint(mint_id, signed.tx_hash, signed.max_ledger)
            )
        if confirmed.status == "FAILED":
            raise to_temporal(MintFailed(f"the transaction failed on chain ({confirmed.result})"))
        recorded = await self._run(
            "record", MintActivities.record_mint, RecordMint(mint_id, self.tx_hash, confirmed.return_value_xdr)
        )
        return MintResult(mint_id=mint_id, tx_hash=self.tx_hash, tokens=recorded.tokens)

    @workflow.query
    def status(self) -> MintStatus:
        state = "failed" if self.error else "minted" if self.done else "running"
        return MintStatus(status=state, step=self.step, tx_hash=self.tx_hash, builds=self.builds, error=self.error)
