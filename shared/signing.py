"""Ed25519 signatures: one holder signs, everyone else can only verify.

Two kinds of signature cross the broker. ``actor``: the gateway signs who is
calling on every RPC it makes (:mod:`shared.actor_assertion`), so a message
put on the broker by anyone else speaks for nobody. ``event``: the relay signs
every event it publishes from the log (:mod:`shared.relay`), and consumers act
only on what verifies (:mod:`shared.consumer`), so money moves only on events
that are in the log. A service holds public keys only: it can check both
kinds and forge neither.

A key is 32 random bytes in base64url. The one signer of a kind has
``<KIND>_SIGNING_KEY``; every verifier has ``<KIND>_VERIFY_KEYS``, a list, so
that a key can be rotated (add the new public key everywhere, switch the
signer, drop the old key). ``python -m shared.signing`` prints a new pair. In
development both derive from a random secret shared through ``var/``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Iterable
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.config import Settings, settings

Kind = Literal["actor", "event"]

SIGNATURE_HEADER = "x-signature"
"""AMQP header of a published event: the relay's signature over the message body."""
SIGNED_BY_HEADER = "x-signed-by"
"""AMQP header naming the key (:func:`key_id`) that signed it."""


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """Names a public key in what it signed, so a verifier with several picks one."""
    return hashlib.sha256(public_bytes(key)).hexdigest()[:16]


class Signer:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key
        self.key_id = key_id(key.public_key())

    def sign(self, data: bytes) -> str:
        return _encode(self.key.sign(data))


class Verifier:
    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self.keys = {key_id(key): key for key in keys}
        if not self.keys:
            raise ValueError("a verifier needs at least one public key")

    def verifies(self, data: bytes, signature: str, signed_by: str) -> bool:
        key = self.keys.get(signed_by)
        if key is None:
            return False
        try:
            key.verify(_decode(signature), data)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


def _private(kind: Kind, config: Settings) -> Ed25519PrivateKey:
    configured = config.actor_signing_key if kind == "actor" else config.event_signing_key
    if configured:
        return Ed25519PrivateKey.from_private_bytes(_decode(configured))
    secret = config.development_secret(f"{kind}-signing-secret", f"{kind.upper()}_SIGNING_KEY")
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(secret.encode()).digest())


def signer(kind: Kind, config: Settings | None = None) -> Signer:
    """The signer of ``kind``: only the gateway (actor) and the relay (event) call this."""
    return Signer(_private(kind, config or settings()))


def verifier(kind: Kind, config: Settings | None = None) -> Verifier:
    config = config or settings()
    configured = config.actor_verify_keys if kind == "actor" else config.event_verify_keys
    if configured:
        return Verifier(Ed25519PublicKey.from_public_bytes(_decode(k)) for k in configured)
    if config.environment == "production":
        raise RuntimeError(f"{kind.upper()}_VERIFY_KEYS must be set in production")
    return Verifier([_private(kind, config).public_key()])


def new_key_pair() -> tuple[str, str]:
    """(signing key, verify key), for an operator's secrets."""
    private = Ed25519PrivateKey.from_private_bytes(secrets.token_bytes(32))
    return _encode(private.private_bytes_raw()), _encode(public_bytes(private.public_key()))


def new_keys_environment() -> dict[str, str]:
    """A fresh pair of each kind, as the variables that carry them."""
    variables: dict[str, str] = {}
    for kind in ("ACTOR", "EVENT"):
        signing, verify = new_key_pair()
        variables |= {f"{kind}_SIGNING_KEY": signing, f"{kind}_VERIFY_KEYS": verify}
    return variables


if __name__ == "__main__":
    for name, value in new_keys_environment().items():
        print(f"{name}={value}")
