"""Minting smols as Stellar tokens: check the client's transaction here, then hand it to MintWorkflow."""

import uuid

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from api.deps import IdempotentDep, PoolDep, SettingsDep, TemporalDep, UserDep
from contracts.mint import MintInput
from smol import mints, repo
from smol.errors import InvalidInput, InvalidMint, ServiceUnavailable, TooManyRequests
from smol.ids import is_smol_id
from smol.stellar import read_mint
from smol.temporal import start_workflow
from workflows.mint import MintWorkflow

router = APIRouter(tags=["mint"])
ERRORS = {
    400: {"description": "No xdr, or a transaction that is not this mint", "content": {"text/plain": {}}},
    401: {"description": "No valid token", "content": {"text/plain": {}}},
    404: {"description": "No such smol the caller can see", "content": {"text/plain": {}}},
    409: {"description": "Already minted, or being minted (or, with an Idempotency-Key, the first request with it "
                         "still being answered)", "content": {"text/plain": {}}},
    429: {"description": "Over SMOL_MINTS_PER_HOUR for this address", "content": {"text/plain": {}}},
    503: {"description": "Minting is not configured, or the workflow service is down", "content": {"text/plain": {}}},
}
XdrBody = Body(None, embed=True, description="the transaction (base64 XDR) the client built and signed")


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} is required")
    return value.strip()


async def _start(pool, temporal, settings, user, xdr, smol_ids: list[str], batch: bool) -> JSONResponse:
    if not settings.minting:
        raise ServiceUnavailable("minting is not configured on this server")
    xdr = _text(xdr, "xdr")
    request = read_mint(
        xdr, passphrase=settings.stellar_network_passphrase, contract_id=settings.contract_id,
        issuer=settings.issuer, batch=batch, max_batch=settings.mint_max_batch,
    )  # fmt: skip
    if sorted(request.smol_ids) != sorted(smol_ids):
        raise InvalidMint("the transaction's salts are not the requested smol ids")
    if request.user != user.address:
        raise InvalidMint("the transaction mints for another address than the caller's")
    wait = await repo.take_create_slot(pool, f"mint:{user.address}", settings.mints_per_hour, 3600)
    if wait is not None:
        raise TooManyRequests(f"at most {settings.mints_per_hour} mint requests an hour; try again later", wait)
    mint_id = uuid.uuid4().hex
    await mints.claim(pool, mint_id, user.address, smol_ids, batch, xdr)
    try:
        await start_workflow(temporal, MintWorkflow.run, MintInput(mint_id), id=f"mint-{mint_id}", settings=settings)
    except ServiceUnavailable:
        await mints.forget(pool, mint_id)
        raise
    return JSONResponse({"mint_id": mint_id, "ids": smol_ids}, status_code=202)


@router.post("/mint/{id:smolid}", status_code=202, summary="Mint one smol as a token", responses=ERRORS)
async def mint_one(id: str, user: UserDep, pool: PoolDep, temporal: TemporalDep, settings: SettingsDep,
                   idempotent: IdempotentDep, xdr: str | None = XdrBody):  # fmt: skip
    return await idempotent.run(lambda: _start(pool, temporal, settings, user, xdr, [id], batch=False))


@router.post("/mint", status_code=202, summary="Mint several smols in one transaction", responses=ERRORS)
async def mint_many(user: UserDep, pool: PoolDep, temporal: TemporalDep, settings: SettingsDep,
                    idempotent: IdempotentDep, xdr: str | None = XdrBody,
                    ids: list | None = Body(None, embed=True)):  # fmt: skip
    return await idempotent.run(lambda: _mint_many(user, pool, temporal, settings, xdr, ids))


async def _mint_many(user, pool, temporal, settings, xdr, ids) -> JSONResponse:
    if not isinstance(ids, list) or not ids:
        raise InvalidInput("ids must be a non-empty list of smol ids")
    if len(ids) > settings.mint_max_batch:
        raise InvalidInput(f"a batch mints at most {settings.mint_max_batch} smols")
    if not all(isinstance(i, str) and is_smol_id(i) for i in ids) or len(set(ids)) != len(ids):
        raise InvalidInput("ids must be distinct smol ids (64 hex characters)")
    return await _start(pool, temporal, settings, user, xdr, list(ids), batch=True)
