"""Mint transactions for the Smol contract: what a client may send, what the server adds, and how results map back.

The client builds a transaction calling `coin_it(user, asset_bytes, salt, fee_rule)` or
`coin_them(user, [asset_bytes], [salt], [fee_rule])` on the configured contract and signs its own authorization
entry (address credentials). The server checks it, co-signs the entries for its own address, and wraps the
operation into a transaction of its own account with the resources and fee its own enforcing simulation found (it
pays the fee, up to a cap; the client's resources and fee are not used), bounded to a few ledgers so an unconfirmed
transaction provably expires before another is built.
"""

import copy
from dataclasses import dataclass

from stellar_sdk import Address, Asset, Keypair, TransactionBuilder, TransactionEnvelope, scval
from stellar_sdk import xdr as stellar_xdr
from stellar_sdk.account import Account
from stellar_sdk.auth import authorize_entry
from stellar_sdk.operation import InvokeHostFunction

from smol.errors import InvalidMint

SINGLE, BATCH = "coin_it", "coin_them"
ADDRESS_CREDENTIALS = stellar_xdr.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS
VOID = stellar_xdr.SCValType.SCV_VOID


@dataclass
class MintRequest:
    user: str
    smol_ids: list[str]


def salt_of(smol_id: str) -> bytes:
    return bytes.fromhex(smol_id)


def asset_of(smol_id: str, issuer: str) -> Asset:
    """The smol's token: a 12-character code from its id, from the configured issuer."""
    return Asset(smol_id[:12], issuer)


def asset_bytes_of(smol_id: str, issuer: str) -> bytes:
    return asset_of(smol_id, issuer).to_xdr_object().to_xdr_bytes()


def token_address_of(smol_id: str, issuer: str, passphrase: str) -> str:
    """The token contract the mint deploys: the Stellar Asset Contract of the smol's asset."""
    return asset_of(smol_id, issuer).contract_id(passphrase)


def decode(xdr_text: str, passphrase: str) -> TransactionEnvelope:
    try:
        envelope = TransactionEnvelope.from_xdr(xdr_text, passphrase)
    except Exception:
        raise InvalidMint("xdr is not a transaction envelope") from None
    return envelope


def invocation_of(envelope: TransactionEnvelope) -> InvokeHostFunction:
    operations = envelope.transaction.operations
    if len(operations) != 1 or not isinstance(operations[0], InvokeHostFunction):
        raise InvalidMint("the transaction must have exactly one contract invocation")
    operation = operations[0]
    if operation.host_function.type != stellar_xdr.HostFunctionType.HOST_FUNCTION_TYPE_INVOKE_CONTRACT:
        raise InvalidMint("the transaction must invoke a contract function")
    return operation


def _vec(value: stellar_xdr.SCVal, what: str) -> list:
    if value.type != stellar_xdr.SCValType.SCV_VEC or value.vec is None:
        raise InvalidMint(f"{what} must be a list")
    return list(value.vec.sc_vec)


def _bytes(value: stellar_xdr.SCVal, what: str) -> bytes:
    if value.type != stellar_xdr.SCValType.SCV_BYTES:
        raise InvalidMint(f"{what} must be bytes")
    return value.bytes.sc_bytes


def read_mint(xdr_text: str, *, passphrase: str, contract_id: str, issuer: str, batch: bool,
              max_batch: int = 20) -> MintRequest:  # fmt: skip
    """The user and smol ids a client's mint transaction is for, or InvalidMint saying what is wrong with it."""
    envelope = decode(xdr_text, passphrase)
    operation = invocation_of(envelope)
    call = operation.host_function.invoke_contract
    if Address.from_xdr_sc_address(call.contract_address).address != contract_id:
        raise InvalidMint("the transaction calls another contract")
    expected = BATCH if batch else SINGLE
    if call.function_name.sc_symbol.decode(errors="replace") != expected:
        raise InvalidMint(f"the transaction must call {expected}")
    if len(call.args) != 4:
        raise InvalidMint(f"{expected} takes 4 arguments")
    try:
        user = scval.from_address(call.args[0]).address
    except Exception:
        raise InvalidMint("the first argument must be the user's address") from None
    if batch:
        assets, salts = _vec(call.args[1], "asset_bytes"), _vec(call.args[2], "salts")
        if len(_vec(call.args[3], "fee_rules")) != len(salts) or len(assets) != len(salts):
            raise InvalidMint("coin_them needs as many assets and fee rules as salts")
        if not 1 <= len(salts) <= max_batch:
            raise InvalidMint(f"a batch mints 1 to {max_batch} smols")
    else:
        assets, salts = [call.args[1]], [call.args[2]]
    smol_ids = []
    for asset, salt in zip(assets, salts, strict=True):
        raw = _bytes(salt, "salt")
        if len(raw) != 32:
            raise InvalidMint("each salt must be 32 bytes: a smol id")
        smol_id = raw.hex()
        if _bytes(asset, "asset_bytes") != asset_bytes_of(smol_id, issuer):
            raise InvalidMint(f"asset_bytes for {smol_id} must be {smol_id[:12]}:{issuer}")
        smol_ids.append(smol_id)
    if len(set(smol_ids)) != len(smol_ids):
        raise InvalidMint("a smol appears twice")
    for entry in operation.auth:
        if entry.credentials.type != ADDRESS_CREDENTIALS:
            raise InvalidMint("authorization entries must use address credentials (sign for your address)")
    if not any(_signed_by(entry, user) and entry.root_invocation.function.contract_fn == call
               for entry in operation.auth):  # fmt: skip
        raise InvalidMint("the transaction needs your signed authorization entry for this call")
    return MintRequest(user=user, smol_ids=smol_ids)


def _entry_address(entry: stellar_xdr.SorobanAuthorizationEntry) -> str | None:
    if entry.credentials.type != ADDRESS_CREDENTIALS:
        return None
    return Address.from_xdr_sc_address(entry.credentials.address.address).address


def _signed_by(entry: stellar_xdr.SorobanAuthorizationEntry, address: str) -> bool:
    signature = entry.credentials.address.signature if entry.credentials.type == ADDRESS_CREDENTIALS else None
    return _entry_address(entry) == address and signature is not None and signature.type != VOID


def cosigned_invocation(xdr_text: str, *, server: Keypair, passphrase: str,
                        auth_valid_until: int) -> InvokeHostFunction:  # fmt: skip
    """The client's invocation with the server's authorization entries signed (only when they authorize exactly this
    invocation); the others are left as they are."""
    operation = copy.deepcopy(invocation_of(decode(xdr_text, passphrase)))
    call = operation.host_function.invoke_contract
    signed = []
    for entry in operation.auth:
        if _entry_address(entry) == server.public_key:
            invocation = entry.root_invocation
            if invocation.function.contract_fn != call or invocation.sub_invocations:
                raise InvalidMint("the server's authorization is asked for something other than this mint")
            entry = authorize_entry(entry, server, auth_valid_until, passphrase)
        signed.append(entry)
    operation.auth = signed
    return operation


def others_sign_until(operation: InvokeHostFunction, server: str) -> int | None:
    """The ledger after which the first of the other parties' signatures (the user's) expires."""
    ledgers = [entry.credentials.address.signature_expiration_ledger.uint32 for entry in operation.auth
               if entry.credentials.type == ADDRESS_CREDENTIALS and _entry_address(entry) != server]  # fmt: skip
    return min(ledgers, default=None)


def server_transaction(operation: InvokeHostFunction, *, server: Keypair, sequence: int, passphrase: str,
                       max_ledger: int, fee: int, soroban_data: stellar_xdr.SorobanTransactionData | None = None,
                       ) -> TransactionEnvelope:  # fmt: skip
    """The invocation in a transaction of the server's account (it pays `fee` at most), valid up to `max_ledger`,
    signed. `sequence` is the account's current sequence number; the transaction uses the next one."""
    builder = TransactionBuilder(Account(server.public_key, sequence), passphrase, base_fee=100)
    builder.append_operation(operation).set_ledger_bounds(0, max_ledger).set_timeout(0)
    if soroban_data is not None:
        builder.set_soroban_data(soroban_data)
    transaction = builder.build()
    transaction.transaction.fee = fee
    transaction.sign(server)
    return transaction


def mint_results(return_value_xdr: str, smol_ids: list[str], *, issuer: str, passphrase: str) -> dict[str, tuple]:
    """(token, amm) per smol from the contract's return value, matched by each smol's token address."""
    value = stellar_xdr.SCVal.from_xdr(return_value_xdr)
    if value.type != stellar_xdr.SCValType.SCV_VEC:
        raise ValueError("the mint returned something other than a list")
    items = list(value.vec.sc_vec)
    single = items and items[0].type == stellar_xdr.SCValType.SCV_ADDRESS  # coin_it: (token, amm)
    pairs = [items] if single else [_vec(item, "pair") for item in items]
    by_token = {}
    for pair in pairs:
        token, amm = (scval.from_address(part).address for part in pair)
        by_token[token] = amm
    results = {}
    for smol_id in smol_ids:
        token = token_address_of(smol_id, issuer, passphrase)
        if token not in by_token:
            raise ValueError(f"the mint returned no token for {smol_id}")
        results[smol_id] = (token, by_token[token])
    return results
