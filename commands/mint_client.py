"""The client's side of a mint, for `smol mint` and the tests: build the contract call for a classic account,
simulate it to learn the authorization entries and resources, sign the caller's own entry, sign the envelope."""

from stellar_sdk import Address, Keypair, TransactionBuilder, scval
from stellar_sdk import xdr as stellar_xdr
from stellar_sdk.account import Account
from stellar_sdk.auth import authorize_entry

from smol.errors import StellarRpcError
from smol.stellar import BATCH, SINGLE, asset_bytes_of, salt_of
from smol.stellar_rpc import StellarRpc


def mint_arguments(user: str, smol_ids: list[str], issuer: str, batch: bool) -> list[stellar_xdr.SCVal]:
    assets = [scval.to_bytes(asset_bytes_of(smol_id, issuer)) for smol_id in smol_ids]
    salts = [scval.to_bytes(salt_of(smol_id)) for smol_id in smol_ids]
    if not batch:
        return [scval.to_address(user), assets[0], salts[0], scval.to_void()]
    fee_rules = [scval.to_void() for _ in smol_ids]
    return [scval.to_address(user), scval.to_vec(assets), scval.to_vec(salts), scval.to_vec(fee_rules)]


async def build_mint(rpc: StellarRpc, secret: str, smol_ids: list[str], *, contract_id: str, issuer: str,
                     passphrase: str, batch: bool, auth_ledgers: int = 60, base_fee: int = 100,
                     arguments: list | None = None, function: str | None = None) -> str:  # fmt: skip
    """The signed transaction XDR to send to `POST /mint/{id}` (or `POST /mint` when `batch`)."""
    keypair = Keypair.from_secret(secret)
    account = Account(keypair.public_key, await rpc.sequence_of(keypair.public_key))
    function = function or (BATCH if batch else SINGLE)
    arguments = arguments or mint_arguments(keypair.public_key, smol_ids, issuer, batch)

    def build(fee: int, auth=None, soroban_data=None):
        builder = TransactionBuilder(account, passphrase, base_fee=fee)
        builder.append_invoke_contract_function_op(contract_id, function, arguments, auth=auth).set_timeout(300)
        if soroban_data is not None:
            builder.set_soroban_data(soroban_data)
        return builder.build()

    simulated = await rpc.simulate(build(base_fee).to_xdr())
    if simulated.get("error") or not simulated.get("results"):
        raise StellarRpcError(f"simulation failed: {simulated.get('error')}", retryable=False)
    valid_until = int(simulated["latestLedger"]) + auth_ledgers
    entries = []
    for entry_xdr in simulated["results"][0].get("auth") or []:
        entry = stellar_xdr.SorobanAuthorizationEntry.from_xdr(entry_xdr)
        address = Address.from_xdr_sc_address(entry.credentials.address.address).address
        entries.append(authorize_entry(entry, keypair, valid_until, passphrase) if address == keypair.public_key
                       else entry)  # fmt: skip
    data = stellar_xdr.SorobanTransactionData.from_xdr(simulated["transactionData"])
    transaction = build(base_fee + int(simulated["minResourceFee"]), entries, data)
    transaction.sign(keypair)
    return transaction.to_xdr()
