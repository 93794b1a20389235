"""Passkey-kit smart-wallet addresses: the contract a credential's wallet is deployed at.

passkey-kit deploys the wallet of a passkey from a fixed deployer account with `salt = sha256(credential id)`, so
the address follows from the credential alone (passkey-kit `src/utils.ts`, `deriveContractAddress`).
"""

import hashlib

from stellar_sdk import Address, Keypair, StrKey, xdr

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
