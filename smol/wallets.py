"""Passkey-kit smart-wallet addresses: the contract a credential's wallet is deployed at.

passkey-kit deploys the wallet of a passkey from a fixed deployer account with `salt = sha256(credential id)`, so
the address follows from the credential alone (passkey-kit `src/utils.ts`, `deriveContractAddress`).
"""

import hashlib
import struct

from stellar_sdk import Address, Keypair, StrKey, scval, xdr

from smol.errors import StellarRpcError
from smol.stellar_rpc import StellarRpc

# passkey-kit's deployer: Keypair.fromRawEd25519Seed(sha256("kalepail")), GC2C7AWL…SXFO
PASSKEY_KIT_DEPLOYER = Keypair.from_raw_ed25519_seed(hashlib.sha256(b"kalepail").digest()).public_key


def wallet_address(credential_id: bytes, deployer: str, network_passphrase: str) -> str:
    """The `C…` address of the wallet `deployer` deploys for the credential with these raw id bytes."""
    preimage = xdr.HashIDPreimage(
        type=xdr.EnvelopeType.ENVELOPE_TYPE_CONTRACT_ID,
        contract_id=xdr.HashIDPreimageContractID(
            network_id=xdr.Hash(hashlib.sha256(network_passphrase.encode()).digest()),
            contract_id_preimage=xdr.ContractIDPreimage(
                type=xdr.ContractIDPreimageType.CONTRACT_ID_PREIMAGE_FROM_ADDRESS,
                from_address=xdr.ContractIDPreimageFromAddress(
                    address=Address(deployer).to_xdr_sc_address(),
                    salt=xdr.Uint256(hashlib.sha256(credential_id).digest()),
                ),
            ),
        ),
    )
    return StrKey.encode_contract(hashlib.sha256(preimage.to_xdr_bytes()).digest())


def wallet_addresses(credential_id: bytes, deployers: list[str], network_passphrase: str) -> list[str]:
    """The address under each deployer, in the order given (the first is the one the server picks)."""
    return [wallet_address(credential_id, deployer, network_passphrase) for deployer in deployers]


def _wallet_keys(address: str, credential_id: bytes) -> list[xdr.LedgerKey]:
    """Where passkey-kit wallets keep the credential's signer: under `SignerKey::Secp256r1(credential id)`
    (smart-wallet; persistent or temporary storage), or under the raw credential id (the earlier webauthn-wallet)."""
    contract = Address(address).to_xdr_sc_address()
    signer = scval.to_vec([scval.to_symbol("Secp256r1"), scval.to_bytes(credential_id)])
    stored = [(key, durability) for key in (signer, scval.to_bytes(credential_id))
              for durability in (xdr.ContractDataDurability.PERSISTENT, xdr.ContractDataDurability.TEMPORARY)]
    return [xdr.LedgerKey(xdr.LedgerEntryType.CONTRACT_DATA,
                          contract_data=xdr.LedgerKeyContractData(contract=contract, key=key, durability=durability))
            for key, durability in stored]  # fmt: skip


def _signer_key(value: xdr.SCVal) -> bytes | None:
    """The public key in a stored signer: `SignerVal::Secp256r1(key, …)`, or the key itself (webauthn-wallet)."""
    if value.type == xdr.SCValType.SCV_BYTES:
        found = value.bytes.sc_bytes
    elif value.type == xdr.SCValType.SCV_VEC and value.vec and len(value.vec.sc_vec) >= 2:
        kind, found = value.vec.sc_vec[0], value.vec.sc_vec[1]
        if kind.type != xdr.SCValType.SCV_SYMBOL or kind.sym.sc_symbol != b"Secp256r1":
            return None
        found = found.bytes.sc_bytes if found.type == xdr.SCValType.SCV_BYTES else None
    else:
        return None
    return found if found is not None and len(found) == 65 else None


async def on_chain(rpc: StellarRpc, address: str, credential_id: bytes) -> bytes | None:
    """The secp256r1 public key (SEC 1, uncompressed, 65 bytes) the wallet at `address` holds for the credential, as
    the network has it; None when it holds none where passkey-kit keeps them (StellarRpcError when the RPC cannot
    say)."""
    keys = _wallet_keys(address, credential_id)
    result = await rpc.call("getLedgerEntries", {"keys": [key.to_xdr() for key in keys]})
    signer = None
    try:
        for entry in result.get("entries") or []:
            data = xdr.LedgerEntryData.from_xdr(entry["xdr"])
            if data.type == xdr.LedgerEntryType.CONTRACT_DATA:
                signer = signer or _signer_key(data.contract_data.val)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, EOFError, struct.error):
        raise StellarRpcError("Stellar RPC getLedgerEntries answered what is not a ledger entry") from None
    return signer
