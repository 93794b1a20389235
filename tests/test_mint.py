"""Minting through the API and MintWorkflow against a local Stellar RPC that checks signatures as the network does."""

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest
from pydantic import SecretStr
from stellar_sdk import Keypair, StrKey, TransactionEnvelope, scval
from stellar_sdk import xdr as stellar_xdr
from stellar_sdk.auth import authorize_entry
from temporalio.client import WorkflowFailureError

from activities.failures import smol_worker
from activities.mint import MintActivities
from commands.mint_client import mint_arguments
from smol import repo
from smol.ids import new_smol_id
from smol.stellar import token_address_of
from tests.fake_stellar import NEEDED
from tests.support import CONTRACT, PASSPHRASE, SERVER, _stop, client_xdr
from workflows.mint import MintWorkflow


@pytest.fixture
def reset(rpc):
    rpc.fail_on_chain, rpc.send_status, rpc.send_delays, rpc.never_apply, rpc.apply_after = 0, [], [], False, 0.8
    rpc.simulate_errors, rpc.restore_needed = [], False
    yield rpc


def worker(stack, temporal, pool, rpc_client, mint_settings):
    update = {**mint_settings, "stellar_secret": SecretStr(SERVER.secret)}
    activities = MintActivities(pool, rpc_client, stack.settings.model_copy(update=update), confirm_interval=0.2)
    return smol_worker(temporal, task_queue=mint_settings["task_queue"], workflows=[MintWorkflow],
                  activities=activities.all())  # fmt: skip


async def a_smol(pool, address: str, public: bool = True) -> str:
    smol_id = new_smol_id()
    async with pool.acquire() as conn:
        await repo.insert_smol(conn, smol_id=smol_id, title="t", song_1="a", song_2="b", public=public,
                               instrumental=False, address=address, playlist=None)  # fmt: skip
    return smol_id


async def a_mintable_smol(pool, rpc_client) -> tuple[Keypair, str, str]:
    """A new user, a smol of theirs, and the transaction that mints it."""
    user = Keypair.random()
    smol_id = await a_smol(pool, user.public_key)
    return user, smol_id, await client_xdr(rpc_client, user, [smol_id])


async def ask_to_mint(api, stack, user: Keypair, smol_id: str, xdr: str):
    return await api.post(f"/mint/{smol_id}", json={"xdr": xdr}, headers=stack.auth(user.public_key))


def altered(xdr: str, auth=None, **transaction_fields) -> str:
    """The client's transaction with its entries changed by `auth(entries)` or fields of the transaction replaced
    (the client's own envelope signature does not matter: the server wraps the call in a transaction of its own)."""
    envelope = TransactionEnvelope.from_xdr(xdr, PASSPHRASE)
    operation = envelope.transaction.operations[0]
    if auth is not None:
        operation.auth = auth(operation.auth)
    for name, value in transaction_fields.items():
        setattr(envelope.transaction, name, value)
    return envelope.to_xdr()


def unsigned_entries(entries: list) -> list:
    for entry in entries:
        entry.credentials.address.signature = scval.to_void()
    return entries


def with_resources(xdr: str, resource_fee: int | None = None, instructions: int | None = None) -> str:
    envelope = TransactionEnvelope.from_xdr(xdr, PASSPHRASE)
    data = envelope.transaction.soroban_data
    if resource_fee is not None:
        envelope.transaction.fee += resource_fee - data.resource_fee.int64
        data.resource_fee = stellar_xdr.Int64(resource_fee)
    if instructions is not None:
        data.resources.instructions = stellar_xdr.Uint32(instructions)
    return envelope.to_xdr()


def sends(rpc) -> int:
    return sum(1 for r in rpc.requests if b'"sendTransaction"' in r["body"])


async def mint_result(temporal, mint_id: str):
    return await asyncio.wait_for(temporal.get_workflow_handle_for(MintWorkflow.run, f"mint-{mint_id}").result(), 60)


async def test_a_single_mint_end_to_end(stack, pool, temporal, api, rpc_client, reset, mint_settings):
    user, smol_id, xdr = await a_mintable_smol(pool, rpc_client)
    before = sends(reset)
    async with worker(stack, temporal, pool, rpc_client, mint_settings):
        answer = await ask_to_mint(api, stack, user, smol_id, xdr)
        assert answer.status_code == 202, answer.text
        result = await mint_result(temporal, answer.json()["mint_id"])
    body = (await api.get(f"/{smol_id}")).json()
    token = token_address_of(smol_id, SERVER.public_key, PASSPHRASE)
    assert body["d1"]["Mint_Token"] == token == result.tokens[smol_id][0]
    assert body["d1"]["Mint_Amm"].startswith("C") and body["mint"]["status"] == "minted"
    assert sends(reset) - before == 1 and body["mint"]["tx_hash"] == result.tx_hash
    again = await ask_to_mint(api, stack, user, smol_id, xdr)
    assert again.status_code == 409 and "already minted" in again.text


async def test_a_batch_mint_matches_results_by_token(stack, pool, temporal, api, rpc_client, reset, mint_settings):
    user = Keypair.random()
    smol_ids = [await a_smol(pool, user.public_key) for _ in range(4)]
    xdr = await client_xdr(rpc_client, user, smol_ids, batch=True)
    async with worker(stack, temporal, pool, rpc_client, mint_settings):
        answer = await api.post("/mint", json={"xdr": xdr, "ids": smol_ids}, headers=stack.auth(user.public_key))
        assert answer.status_code == 202, answer.text
        await mint_result(temporal, answer.json()["mint_id"])
    for smol_id in smol_ids:  # the fake answers the pairs shuffled
        row = await repo.get_smol(pool, smol_id)
        assert row["mint_token"] == token_address_of(smol_id, SERVER.public_key, PASSPHRASE)


async def test_bad_requests_are_refused_before_anything_is_sent(stack, pool, api, rpc_client, reset):
    user, other = Keypair.random(), Keypair.random()
    mine, theirs_private = await a_smol(pool, user.public_key), await a_smol(pool, other.public_key, public=False)
    auth = stack.auth(user.public_key)
    good = await client_xdr(rpc_client, user, [mine])
    before, mints_before = sends(reset), await pool.fetchval("SELECT count(*) FROM mints")

    async def status(path: str, body, headers=auth) -> int:
        return (await api.post(path, json=body, headers=headers)).status_code

    assert await status(f"/mint/{mine}", {"xdr": good}, headers={}) == 401
    assert await status(f"/mint/{mine}", {}) == 400
    assert await status(f"/mint/{mine}", {"xdr": ""}) == 400
    assert await status(f"/mint/{mine}", {"xdr": "not base64 at all!"}) == 400
    assert await status(f"/mint/{mine}", {"xdr": "AAAA" * 40}) == 400
    wrong_contract = await client_xdr(rpc_client, user, [mine], contract_id=StrKey.encode_contract(os.urandom(32)))
    assert await status(f"/mint/{mine}", {"xdr": wrong_contract}) == 400
    batch_call = await client_xdr(rpc_client, user, [mine], batch=True)
    assert await status(f"/mint/{mine}", {"xdr": batch_call}) == 400  # coin_them sent to the single route
    other_salt = await client_xdr(rpc_client, user, [new_smol_id()])
    assert await status(f"/mint/{mine}", {"xdr": other_salt}) == 400
    wrong_asset = mint_arguments(user.public_key, [mine], Keypair.random().public_key, batch=False)
    wrong_asset_xdr = await client_xdr(rpc_client, user, [mine], arguments=wrong_asset)
    assert await status(f"/mint/{mine}", {"xdr": wrong_asset_xdr}) == 400
    not_the_callers = await client_xdr(rpc_client, other, [mine])
    assert await status(f"/mint/{mine}", {"xdr": not_the_callers}) == 400
    unknown = new_smol_id()
    assert await status(f"/mint/{unknown}", {"xdr": await client_xdr(rpc_client, user, [unknown])}) == 404
    hidden = await client_xdr(rpc_client, user, [theirs_private])
    assert await status(f"/mint/{theirs_private}", {"xdr": hidden}) == 404
    assert await status("/mint", {"xdr": good, "ids": []}) == 400
    assert await status("/mint", {"xdr": good, "ids": ["../etc"]}) == 400
    assert await status("/mint", {"xdr": good, "ids": [mine, mine]}) == 400
    assert await status("/mint", {"xdr": good, "ids": "x"}) == 422  # a type error is a validation error
    assert await status("/mint", {"xdr": good, "ids": [mine]}) == 400  # coin_it sent to the batch route
    for unsigned in (altered(good, auth=lambda entries: []), altered(good, auth=unsigned_entries)):
        assert await status(f"/mint/{mine}", {"xdr": unsigned}) == 400
    assert sends(reset) == before and await pool.fetchval("SELECT count(*) FROM mints") == mints_before


async def test_a_smol_being_minted_cannot_be_minted_again(stack, pool, api, rpc_client, reset, temporal):
    user, smol_id, xdr = await a_mintable_smol(pool, rpc_client)
    first = await ask_to_mint(api, stack, user, smol_id, xdr)
    second = await ask_to_mint(api, stack, user, smol_id, xdr)
    assert first.status_code == 202 and second.status_code == 409 and "being minted" in second.text
    deleted = await api.delete(f"/{smol_id}", headers=stack.auth(user.public_key))
    assert deleted.status_code == 409 and "being minted" in deleted.text
    await temporal.get_workflow_handle(f"mint-{first.json()['mint_id']}").terminate("test over")


async def test_a_lost_send_answer_is_confirmed_not_sent_again(stack, pool, temporal, api, rpc_client, reset,
                                                              mint_settings):  # fmt: skip
    reset.send_delays = [2.5]  # accepted, but the answer comes after the client's 1 s timeout
    user, smol_id, xdr = await a_mintable_smol(pool, rpc_client)
    before = sends(reset)
    async with worker(stack, temporal, pool, rpc_client, mint_settings):
        answer = await ask_to_mint(api, stack, user, smol_id, xdr)
        await mint_result(temporal, answer.json()["mint_id"])
    assert sends(reset) - before == 1
    assert (await repo.get_smol(pool, smol_id))["mint_token"]


async def test_an_on_chain_failure_leaves_the_smol_unminted(stack, pool, temporal, api, rpc_client, reset,
                                                            mint_settings):  # fmt: skip
    reset.fail_on_chain = 1
    user, smol_id, xdr = await a_mintable_smol(pool, rpc_client)
    async with worker(stack, temporal, pool, rpc_client, mint_settings):
        answer = await ask_to_mint(api, stack, user, smol_id, xdr)
        with pytest.raises(WorkflowFailureError) as raised:
            await mint_result(temporal, answer.json()["mint_id"])
        assert raised.value.cause.type == "MintFailed" and "failed on chain" in str(raised.value.cause)
        body = (await api.get(f"/{smol_id}")).json()
        assert body["d1"]["Mint_Token"] is None and body["mint"]["status"] == "failed"
        assert "txFAILED" in body["mint"]["error"]
        retry = await client_xdr(rpc_client, user, [smol_id])  # the claim was released: it can be minted again
        again = await api.post(f"/mint/{smol_id}", json={"xdr": retry}, headers=stack.auth(user.public_key))
        assert again.status_code == 202
        await mint_result(temporal, again.json()["mint_id"])
    assert (await repo.get_smol(pool, smol_id))["mint_token"]


async def test_a_refused_transaction_is_reported(stack, pool, temporal, api, rpc_client, reset, mint_settings):
    reset.send_status = ["ERROR"]
    user, smol_id, xdr = await a_mintable_smol(pool, rpc_client)
    async with worker(stack, temporal, pool, rpc_client, mint_settings):
        answer = await ask_to_mint(api, stack, user, smol_id, xdr)
        with pytest.raises(WorkflowFailureError) as raised:
            await mint_result(temporal, answer.json()["mint_id"])
    assert raised.value.cause.type == "MintRejected" and "txINTERNAL_ERROR" in str(raised.value.cause)
    assert (await repo.get_smol(pool, smol_id))["mint_token"] is None


@pytest.mark.parametrize("trouble", ["the contract traps", "an entry signed by another key", "archived entries",
                                     "the user's signature expires too soon"])  # fmt: skip
async def test_a_mint_that_would_cost_the_server_for_nothing_is_never_sent(stack, pool, temporal, api, rpc_client,
                                                                          reset, mint_settings, trouble):  # fmt: skip
    """The server pays the fee even for a transaction that fails on chain: an enforcing simulation runs it first
    (every signature checked, the contract run), and one it refuses is never sent, nor one that could not land."""
    user, smol_id, xdr = await a_mintable_smol(pool, rpc_client)
    if trouble == "the contract traps":
        reset.simulate_errors = ["HostError: Error(Contract, #7)"]
    elif trouble == "an entry signed by another key":
        impostor = Keypair.random()
        xdr = altered(xdr, auth=lambda entries: [authorize_entry(entry, impostor, 10**6, PASSPHRASE)
                                                 for entry in entries])  # fmt: skip
    elif trouble == "archived entries":
        reset.restore_needed = True
    else:
        xdr = await client_xdr(rpc_client, user, [smol_id], auth_ledgers=1)
    before, simulated, charged = sends(reset), len(reset.simulated), reset.charged
    async with worker(stack, temporal, pool, rpc_client, mint_settings):
        answer = await ask_to_mint(api, stack, user, smol_id, xdr)
        assert answer.status_code == 202, answer.text
        with pytest.raises(WorkflowFailureError) as raised:
            await mint_result(temporal, answer.json()["mint_id"])
    assert raised.value.cause.type == "MintRejected", raised.value.cause
    assert sends(reset) == before and reset.charged == charged
    if trouble != "the user's signature expires too soon":  # (refused before any simulation)
        assert len(reset.simulated) > simulated and reset.simulated[-1]["authMode"] == "enforce"
    body = (await api.get(f"/{smol_id}")).json()
    assert body["d1"]["Mint_Token"] is None and body["mint"]["status"] == "failed"
    reset.restore_needed = False
    again = await ask_to_mint(api, stack, user, smol_id, await client_xdr(rpc_client, user, [smol_id]))
    assert again.status_code == 202  # released for another try
    await temporal.get_workflow_handle(f"mint-{again.json()['mint_id']}").terminate("test over")


@pytest.mark.parametrize("declared", ["a resource fee 5x", "too few instructions", "no resources"])
async def test_the_server_declares_and_pays_what_its_own_simulation_found(stack, pool, temporal, api, rpc_client,
                                                                         reset, mint_settings, declared):  # fmt: skip
    """The client's resources and fee are never used: too few would fail on chain (fee charged), too high a fee
    would be paid. The transaction sent declares the simulation's resources and bids a small inclusion fee on top."""
    user, smol_id, xdr = await a_mintable_smol(pool, rpc_client)
    if declared == "a resource fee 5x":
        xdr = with_resources(xdr, resource_fee=1_000_000)
    elif declared == "too few instructions":
        xdr = with_resources(xdr, instructions=1000)
    else:
        xdr = altered(xdr, soroban_data=None)
    charged = reset.charged
    async with worker(stack, temporal, pool, rpc_client, mint_settings):
        answer = await ask_to_mint(api, stack, user, smol_id, xdr)
        assert answer.status_code == 202, answer.text
        result = await mint_result(temporal, answer.json()["mint_id"])
    sent = reset.transactions[result.tx_hash]["envelope"].transaction
    assert sent.soroban_data == NEEDED
    assert sent.fee == stack.settings.mint_inclusion_fee + NEEDED.resource_fee.int64 == reset.charged - charged
    assert (await repo.get_smol(pool, smol_id))["mint_token"]


async def test_mint_requests_of_one_address_are_limited(stack, pool, rpc_client, reset, mint_settings, temporal):
    """Every mint request may cost the server a fee: SMOL_MINTS_PER_HOUR per address."""
    process, url = stack.start_api(**mint_settings, mints_per_hour=2)
    user, other = Keypair.random(), Keypair.random()
    started = []
    try:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            for owner, expected in ((user, 202), (user, 202), (user, 429), (other, 202)):
                smol_id = await a_smol(pool, owner.public_key)
                xdr = await client_xdr(rpc_client, owner, [smol_id])
                answer = await ask_to_mint(http, stack, owner, smol_id, xdr)
                assert answer.status_code == expected, answer.text
                if expected == 429:
                    assert int(answer.headers["retry-after"]) > 3000 and "2 mint requests an hour" in answer.text
                    assert not await pool.fetchval("SELECT count(*) FROM mint_claims WHERE smol_id = $1", smol_id)
                else:
                    started.append(answer.json()["mint_id"])
    finally:
        _stop(process)
        for mint_id in started:
            await temporal.get_workflow_handle(f"mint-{mint_id}").terminate("test over")


async def test_an_expired_transaction_is_rebuilt_once_it_can_no_longer_land(stack, pool, temporal, api, rpc_client,
                                                                            reset, mint_settings):  # fmt: skip
    reset.never_apply = True  # accepted, then never included
    user, smol_id, xdr = await a_mintable_smol(pool, rpc_client)
    before = len(reset.sent)
    async with worker(stack, temporal, pool, rpc_client, mint_settings):
        answer = await ask_to_mint(api, stack, user, smol_id, xdr)
        while len(reset.sent) == before:
            await asyncio.sleep(0.1)
        first = reset.sent[-1]
        while await pool.fetchval("SELECT state FROM mint_transactions WHERE hash = $1", first) != "expired":
            await asyncio.sleep(0.1)
        reset.never_apply = False
        handle = temporal.get_workflow_handle_for(MintWorkflow.run, f"mint-{answer.json()['mint_id']}")
        result = await asyncio.wait_for(handle.result(), 60)
        assert (await handle.query(MintWorkflow.status)).builds == 2
    assert result.tx_hash != first and len(reset.sent) - before == 2


async def test_a_worker_killed_while_confirming_resumes(stack, pool, temporal, api, rpc_client, reset, mint_settings):
    reset.apply_after = 4.0
    user, smol_id, xdr = await a_mintable_smol(pool, rpc_client)
    before = sends(reset)
    process = stack.start_worker(**mint_settings)
    try:
        answer = await ask_to_mint(api, stack, user, smol_id, xdr)
        mint_id = answer.json()["mint_id"]
        while await pool.fetchval("SELECT status FROM mints WHERE id = $1", mint_id) != "confirming":
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait()
        process = stack.start_worker(**mint_settings)
        result = await mint_result(temporal, mint_id)
    finally:
        _stop(process)
    assert result.tokens[smol_id][0] == token_address_of(smol_id, SERVER.public_key, PASSPHRASE)
    assert sends(reset) - before == 1


async def test_the_cli_builds_signs_and_sends_a_mint(stack, pool, temporal, mint_api, rpc_client, reset,
                                                     mint_settings):  # fmt: skip
    user = Keypair.random()
    smol_ids = [await a_smol(pool, user.public_key) for _ in range(2)]
    env = {**stack._env(mint_settings), "SMOL_API_URL": mint_api, "SMOL_MINT_ISSUER": SERVER.public_key}
    env.pop("SMOL_STELLAR_SECRET")  # the CLI is a client: it never has the server's key
    async with worker(stack, temporal, pool, rpc_client, mint_settings):
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "commands.cli", "mint", *smol_ids, "--secret", user.secret, "--wait"],
            env=env, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for smol_id in smol_ids:
        assert token_address_of(smol_id, SERVER.public_key, PASSPHRASE) in done.stdout
    bad = subprocess.run([sys.executable, "-m", "commands.cli", "mint", smol_ids[0], "--secret", "SNOTASECRET"],
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode != 0 and "secret" in bad.stderr


def test_the_server_signs_only_its_own_entries_for_this_exact_call():
    from stellar_sdk import Account, TransactionBuilder

    from smol.errors import InvalidMint
    from smol.stellar import cosigned_invocation, others_sign_until, server_transaction
    from tests.fake_stellar import FakeStellarRpc

    user, smol_id = Keypair.random(), new_smol_id()
    args = mint_arguments(user.public_key, [smol_id], SERVER.public_key, batch=False)
    call = TransactionBuilder(Account(user.public_key, 1), PASSPHRASE).append_invoke_contract_function_op(
        CONTRACT, "coin_it", args).set_timeout(60).build()  # fmt: skip
    invocation = FakeStellarRpc.authorized_invocation(call.transaction.operations[0])
    user_entry = FakeStellarRpc._unsigned_entry(user.public_key, invocation)
    user_entry.credentials.address.signature_expiration_ledger = stellar_xdr.Uint32(450)
    server_entry = FakeStellarRpc._unsigned_entry(SERVER.public_key, invocation)
    call.transaction.operations[0].auth = [user_entry, server_entry]
    operation = cosigned_invocation(call.to_xdr(), server=SERVER, passphrase=PASSPHRASE, auth_valid_until=500)
    assert operation.auth[0] == user_entry  # left untouched
    assert operation.auth[1].credentials.address.signature_expiration_ledger.uint32 == 500
    assert others_sign_until(operation, SERVER.public_key) == 450
    signed = server_transaction(operation, server=SERVER, sequence=7, passphrase=PASSPHRASE, max_ledger=400,
                                fee=210_000, soroban_data=NEEDED)  # fmt: skip
    assert signed.transaction.source.account_id == SERVER.public_key
    assert signed.transaction.sequence == 8  # the next after the account's 7
    assert signed.transaction.fee == 210_000 and signed.transaction.soroban_data == NEEDED
    other = mint_arguments(user.public_key, [new_smol_id()], SERVER.public_key, batch=False)
    sneaky = TransactionBuilder(Account(user.public_key, 1), PASSPHRASE).append_invoke_contract_function_op(
        CONTRACT, "coin_it", other).set_timeout(60).build()  # fmt: skip
    call.transaction.operations[0].auth = [FakeStellarRpc._unsigned_entry(
        SERVER.public_key, FakeStellarRpc.authorized_invocation(sneaky.transaction.operations[0]))]  # fmt: skip
    with pytest.raises(InvalidMint):
        cosigned_invocation(call.to_xdr(), server=SERVER, passphrase=PASSPHRASE, auth_valid_until=500)
