"""A local Stellar RPC for the Smol contract: JSON-RPC 2.0 over real HTTP, checking what it is sent as the network
would (envelope signature, sequence number, ledger bounds, declared resources and fee, authorization-entry signatures
and expiry), and applying `coin_it`/`coin_them` after `apply_after` seconds with a return value holding contract
addresses; a transaction declaring fewer resources than the call needs fails on chain, its fee charged (`charged`).

Knobs: `fail_on_chain` (the next applied transactions FAIL), `send_status` (answer ERROR/TRY_AGAIN_LATER once),
`simulate_errors` (the next simulations fail, as a contract that traps), `restore_needed` (archived entries),
`send_delays` (accept, then answer late: a lost answer), `never_apply` (accepted but never included: it expires).
"""

import base64
import hashlib
import json
import random
import threading
import time

from stellar_sdk import Address, Asset, Keypair, StrKey, TransactionEnvelope, scval
from stellar_sdk import xdr as stellar_xdr
from stellar_sdk.auth import authorization_payload_hash, build_authorization_preimage

from tests.fakes import FakeService, json_answer


class FakeStellarRpc(FakeService):
    def __init__(self, passphrase: str, contract_id: str, server: str, ledger_seconds: float = 0.25,
                 apply_after: float = 0.8):  # fmt: skip
        super().__init__()
        self.passphrase, self.contract_id, self.server_account = passphrase, contract_id, server
        self.ledger_seconds, self.apply_after = ledger_seconds, apply_after
        self.started = time.time()
        self.sequences: dict[str, int] = {}
        self.transactions: dict[str, dict] = {}  # hash -> {envelope, sent_at, ledger_max, result}
        self.sent: list[str] = []  # every sendTransaction that was accepted (PENDING)
        self.fail_on_chain = 0
        self.send_status: list[str] = []
        self.send_delays: list[float] = []
        self.never_apply = False
        self.simulate_errors: list[str] = []
        self.restore_needed = False  # simulations answer a restorePreamble (archived entries)
        self.charged = 0  # stroops of fees charged by applied transactions
        self.simulated: list[dict] = []  # the params of every simulateTransaction
        # deployed passkey-kit wallets: address -> {credential id: (signer public key, SEC 1 65 bytes; durability)}
        self.wallets: dict[str, dict[bytes, tuple[bytes, str]]] = {}
        self.lock = threading.Lock()

    # -- the ledger ------------------------------------------------------------------------------------------------

    @property
    def ledger(self) -> int:
        return 1000 + int((time.time() - self.started) / self.ledger_seconds)

    def sequence(self, account: str) -> int:
        return self.sequences.setdefault(account, 4_000_000_000)

    def handle(self, method, path, headers, body):
        try:
            request = json.loads(body)
            name, params, request_id = request["method"], request.get("params") or {}, request.get("id")
        except (ValueError, KeyError, TypeError):
            return json_answer(200, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
        handler = getattr(self, f"rpc_{name}", None)
        if handler is None:
            return json_answer(200, {"jsonrpc": "2.0", "id": request_id,
                                     "error": {"code": -32601, "message": "method not found"}})  # fmt: skip
        try:
            with self.lock:
                result = handler(params)
        except InvalidParams as exc:
            return json_answer(200, {"jsonrpc": "2.0", "id": request_id,
                                     "error": {"code": -32602, "message": str(exc)}})  # fmt: skip
        if name == "sendTransaction" and self.send_delays:
            time.sleep(self.send_delays.pop(0))
        return json_answer(200, {"jsonrpc": "2.0", "id": request_id, "result": result})

    def rpc_getLatestLedger(self, params):
        return {"id": hashlib.sha256(str(self.ledger).encode()).hexdigest(), "protocolVersion": 22,
                "sequence": self.ledger}  # fmt: skip

    def rpc_getNetwork(self, params):
        return {"passphrase": self.passphrase, "protocolVersion": 22}

    def rpc_getLedgerEntries(self, params):
        entries = []
        for key_xdr in params.get("keys") or []:
            key = stellar_xdr.LedgerKey.from_xdr(key_xdr)
            if key.type == stellar_xdr.LedgerEntryType.CONTRACT_DATA:
                if (value := self._contract_data(key.contract_data)) is not None:
                    entry = stellar_xdr.LedgerEntryData(
                        stellar_xdr.LedgerEntryType.CONTRACT_DATA,
                        contract_data=stellar_xdr.ContractDataEntry(
                            ext=stellar_xdr.ExtensionPoint(0), contract=key.contract_data.contract,
                            key=key.contract_data.key, durability=key.contract_data.durability, val=value,
                        ),
                    )  # fmt: skip
                    entries.append({"key": key_xdr, "xdr": entry.to_xdr(), "lastModifiedLedgerSeq": self.ledger - 1,
                                    "liveUntilLedgerSeq": self.ledger + 100_000})  # fmt: skip
                continue
            if key.type != stellar_xdr.LedgerEntryType.ACCOUNT:
                continue
            account = StrKey.encode_ed25519_public_key(key.account.account_id.account_id.ed25519.uint256)
            entry = stellar_xdr.LedgerEntryData(
                stellar_xdr.LedgerEntryType.ACCOUNT,
                account=stellar_xdr.AccountEntry(
                    account_id=key.account.account_id, balance=stellar_xdr.Int64(10_000_000_000),
                    seq_num=stellar_xdr.SequenceNumber(stellar_xdr.Int64(self.sequence(account))),
                    num_sub_entries=stellar_xdr.Uint32(0), inflation_dest=None, flags=stellar_xdr.Uint32(0),
                    home_domain=stellar_xdr.String32(b""), thresholds=stellar_xdr.Thresholds(b"\x01\x00\x00\x00"),
                    signers=[], ext=stellar_xdr.AccountEntryExt(0),
                ),
            )  # fmt: skip
            entries.append({"key": key_xdr, "xdr": entry.to_xdr(), "lastModifiedLedgerSeq": self.ledger - 1})
        return {"entries": entries, "latestLedger": self.ledger}

    def _contract_data(self, key: stellar_xdr.LedgerKeyContractData) -> stellar_xdr.SCVal | None:
        """A deployed wallet's instance, and its signers as passkey-kit's smart wallet stores them: under
        `SignerKey::Secp256r1(credential id)`, `SignerVal::Secp256r1(public key, expiration, limits)`."""
        signers = self.wallets.get(Address.from_xdr_sc_address(key.contract).address)
        if signers is None:
            return None
        if key.key.type == stellar_xdr.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE:
            executable = stellar_xdr.ContractExecutable(stellar_xdr.ContractExecutableType.CONTRACT_EXECUTABLE_WASM,
                                                        wasm_hash=stellar_xdr.Hash(b"\x07" * 32))  # fmt: skip
            return stellar_xdr.SCVal(stellar_xdr.SCValType.SCV_CONTRACT_INSTANCE,
                                     instance=stellar_xdr.SCContractInstance(executable=executable, storage=None))
        if key.key.type != stellar_xdr.SCValType.SCV_VEC or len(key.key.vec.sc_vec) != 2:
            return None
        kind, credential = key.key.vec.sc_vec
        if kind.type != stellar_xdr.SCValType.SCV_SYMBOL or kind.sym.sc_symbol != b"Secp256r1":
            return None
        public_key, durability = signers.get(credential.bytes.sc_bytes, (None, None))
        if public_key is None or key.durability.name.lower() != durability:
            return None
        unlimited = scval.to_vec([scval.to_void()])  # (SignerExpiration(None), SignerLimits(None))
        return scval.to_vec([scval.to_symbol("Secp256r1"), scval.to_bytes(public_key), unlimited, unlimited])

    def rpc_simulateTransaction(self, params):
        """Recording mode (the default without entries): the authorization entries the contract needs, the user's
        and the server's. Enforcing mode (the default with entries): those entries checked, signatures included;
        a failure is the result's `error`, as the RPC answers it. `simulate_errors` fails the next ones."""
        envelope = self._decode(params.get("transaction"))
        self.simulated.append(params)
        operation = envelope.transaction.operations[0]
        user = scval.from_address(operation.host_function.invoke_contract.args[0]).address
        enforce = params.get("authMode", "enforce" if operation.auth else "record") == "enforce"
        error = self.simulate_errors.pop(0) if self.simulate_errors else None
        error = error or (self._enforced_auth_problem(operation, user) if enforce else None)
        if error:
            return {"error": error, "events": [], "latestLedger": self.ledger}
        invocation = self.authorized_invocation(operation)
        auth = [self._unsigned_entry(address, invocation).to_xdr() for address in (user, self.server_account)]
        answer = {"transactionData": NEEDED.to_xdr(), "minResourceFee": str(NEEDED.resource_fee.int64),
                  "latestLedger": self.ledger,
                  "results": [{"auth": auth, "xdr": scval.to_void().to_xdr()}]}  # fmt: skip
        if self.restore_needed:
            answer["restorePreamble"] = {"transactionData": NEEDED.to_xdr(), "minResourceFee": "100000"}
        return answer

    @staticmethod
    def authorized_invocation(operation) -> stellar_xdr.SorobanAuthorizedInvocation:
        return stellar_xdr.SorobanAuthorizedInvocation(
            function=stellar_xdr.SorobanAuthorizedFunction(
                stellar_xdr.SorobanAuthorizedFunctionType.SOROBAN_AUTHORIZED_FUNCTION_TYPE_CONTRACT_FN,
                contract_fn=operation.host_function.invoke_contract,
            ),
            sub_invocations=[],
        )

    @staticmethod
    def _unsigned_entry(address: str, invocation) -> stellar_xdr.SorobanAuthorizationEntry:
        return stellar_xdr.SorobanAuthorizationEntry(
            credentials=stellar_xdr.SorobanCredentials(
                stellar_xdr.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS,
                address=stellar_xdr.SorobanAddressCredentials(
                    address=Address(address).to_xdr_sc_address(), nonce=stellar_xdr.Int64(random.getrandbits(62)),
                    signature_expiration_ledger=stellar_xdr.Uint32(0), signature=scval.to_void(),
                ),
            ),
            root_invocation=invocation,
        )  # fmt: skip

    def _decode(self, xdr_text) -> TransactionEnvelope:
        try:
            return TransactionEnvelope.from_xdr(xdr_text, self.passphrase)
        except Exception:
            raise InvalidParams("transaction is not a valid envelope") from None

    # -- sending and applying ----------------------------------------------------------------------------------------

    def _problem(self, envelope: TransactionEnvelope) -> str | None:
        """Why the network would refuse this transaction, as a result code, or None."""
        transaction = envelope.transaction
        source = transaction.source.account_id
        source_key = Keypair.from_public_key(source)
        if not any(verifies(source_key, envelope.hash(), sig.signature) for sig in envelope.signatures):
            return "txBAD_AUTH"
        if transaction.sequence != self.sequence(source) + 1:
            return "txBAD_SEQ"
        if transaction.soroban_data is None:
            return "txSOROBAN_INVALID: no resources declared"
        if transaction.fee < transaction.soroban_data.resource_fee.int64 + 100:
            return "txINSUFFICIENT_FEE"
        bounds = transaction.preconditions.ledger_bounds if transaction.preconditions else None
        if bounds is not None and bounds.max_ledger and self.ledger > bounds.max_ledger:
            return "txTOO_LATE"
        for entry in transaction.operations[0].auth:
            if problem := self._auth_problem(entry):
                return problem
        return None

    def _auth_problem(self, entry: stellar_xdr.SorobanAuthorizationEntry) -> str | None:
        credentials = entry.credentials.address
        address = Address.from_xdr_sc_address(credentials.address).address
        if credentials.signature.type == stellar_xdr.SCValType.SCV_VOID:
            return f"txBAD_AUTH_EXTRA: {address} did not sign"
        if credentials.signature_expiration_ledger.uint32 < self.ledger:
            return "txSOROBAN_INVALID: authorization expired"
        preimage = build_authorization_preimage(entry, credentials.signature_expiration_ledger.uint32,
                                                self.passphrase)  # fmt: skip
        payload = authorization_payload_hash(preimage)
        signature = credentials.signature.vec.sc_vec[0].map.sc_map
        fields = {item.key.sym.sc_symbol.decode(): item.val.bytes.sc_bytes for item in signature}
        key = Keypair.from_raw_ed25519_public_key(fields["public_key"])
        if key.public_key != address or not verifies(key, payload, fields["signature"]):
            return f"txBAD_AUTH_EXTRA: bad signature for {address}"
        return None

    def _enforced_auth_problem(self, operation, user: str) -> str | None:
        """Enforcing simulation: the contract's require_auth of the user and of the server, against the entries."""
        call = operation.host_function.invoke_contract
        signed = {}
        for entry in operation.auth:
            if problem := self._auth_problem(entry):
                return f"HostError: Error(Auth, InvalidAction): {problem}"
            if entry.root_invocation.function.contract_fn == call:
                signed[Address.from_xdr_sc_address(entry.credentials.address.address).address] = entry
        for address in (user, self.server_account):
            if address not in signed:
                return f"HostError: Error(Auth, InvalidAction): require_auth of {address} not authorized"
        return None

    def rpc_sendTransaction(self, params):
        envelope = self._decode(params.get("transaction"))
        tx_hash = envelope.hash_hex()
        answer = {"hash": tx_hash, "latestLedger": self.ledger, "latestLedgerCloseTime": str(int(time.time()))}
        if tx_hash in self.transactions:
            return {**answer, "status": "DUPLICATE"}
        if self.send_status:
            status = self.send_status.pop(0)
            return {**answer, "status": status, **({"errorResultXdr": _error_result("txINTERNAL_ERROR")}
                                                  if status == "ERROR" else {})}  # fmt: skip
        problem = self._problem(envelope)
        if problem:
            return {**answer, "status": "ERROR", "errorResultXdr": _error_result(problem), "diagnostic": problem}
        self.sequences[envelope.transaction.source.account_id] += 1
        bounds = envelope.transaction.preconditions.ledger_bounds
        self.transactions[tx_hash] = {"envelope": envelope, "sent_at": time.time(), "result": None,
                                      "max_ledger": bounds.max_ledger if bounds else 0}  # fmt: skip
        self.sent.append(tx_hash)
        return {**answer, "status": "PENDING"}

    def rpc_getTransaction(self, params):
        tx_hash = params.get("hash")
        answer = {"latestLedger": self.ledger, "oldestLedger": 1000}
        entry = self.transactions.get(tx_hash)
        if entry is None or self.never_apply or time.time() - entry["sent_at"] < self.apply_after:
            return {**answer, "status": "NOT_FOUND"}
        if entry["result"] is None:
            entry["result"] = self._apply(entry["envelope"])
        return {**answer, **entry["result"], "envelopeXdr": entry["envelope"].to_xdr()}

    def _apply(self, envelope: TransactionEnvelope) -> dict:
        """Applied, success or not, the fee is charged (the whole of it here: no refunds of unused resources)."""
        self.charged += envelope.transaction.fee
        if self.fail_on_chain:
            self.fail_on_chain -= 1
            return {"status": "FAILED", "ledger": self.ledger, "resultXdr": _error_result("txFAILED")}
        declared = envelope.transaction.soroban_data.resources
        if any(getattr(declared, field).uint32 < getattr(NEEDED.resources, field).uint32
               for field in ("instructions", "disk_read_bytes", "write_bytes")):  # fmt: skip
            return {"status": "FAILED", "ledger": self.ledger, "resultXdr": _error_result("txFAILED: resources")}
        call = envelope.transaction.operations[0].host_function.invoke_contract
        if call.function_name.sc_symbol == b"coin_it":
            value = self._coin(call.args[1])
        else:
            pairs = [self._coin(asset) for asset in call.args[1].vec.sc_vec]
            random.shuffle(pairs)  # the caller must match results by token, not by position
            value = scval.to_vec(pairs)
        return {"status": "SUCCESS", "ledger": self.ledger, "returnValueXdr": value.to_xdr(),
                "resultXdr": _error_result("txSUCCESS")}  # fmt: skip

    def _coin(self, asset_bytes):
        asset = Asset.from_xdr_object(stellar_xdr.Asset.from_xdr_bytes(asset_bytes.bytes.sc_bytes))
        token = asset.contract_id(self.passphrase)
        amm = StrKey.encode_contract(hashlib.sha256(b"amm" + token.encode()).digest())
        return scval.to_vec([scval.to_address(token), scval.to_address(amm)])

    @property
    def applied(self) -> int:
        return sum(1 for entry in self.transactions.values() if entry["result"])


# What every mint needs, and what a simulation answers (its resource fee is the minimum)
NEEDED = stellar_xdr.SorobanTransactionData(
    ext=stellar_xdr.SorobanTransactionDataExt(0),
    resources=stellar_xdr.SorobanResources(
        footprint=stellar_xdr.LedgerFootprint(read_only=[], read_write=[]),
        instructions=stellar_xdr.Uint32(5_000_000), disk_read_bytes=stellar_xdr.Uint32(10_000),
        write_bytes=stellar_xdr.Uint32(10_000),
    ),
    resource_fee=stellar_xdr.Int64(200_000),
)  # fmt: skip


class InvalidParams(Exception):
    pass


def verifies(key: Keypair, data: bytes, signature: bytes) -> bool:
    try:
        key.verify(data, signature)
        return True
    except Exception:
        return False


def _error_result(code: str) -> str:
    """A stand-in for TransactionResult XDR: the code, base64 (callers only show it)."""
    return base64.b64encode(code.encode()).decode()
