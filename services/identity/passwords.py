"""argon2id password hashing, run off eventlet's hub: a hash costs ~140 ms of
CPU in C, which would otherwise freeze every other request of the process."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults
_DUMMY_HASH = _hasher.hash("a password nobody has, to spend the same time on unknown emails")


def hash_password(password: str) -> str:
    hashed: str = tpool.execute(_hasher.hash, password)
    return hashed


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the account exists (``password_hash`` None)."""

    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    verified: bool = tpool.execute(verify)
    return verified


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
