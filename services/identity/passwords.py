"""argon2id password hashing, run off eventlet's hub: a hash costs ~140 ms of
CPU in C, which would otherwise freeze every other request of the process.

Each hash also takes 64 MiB while it runs, and eventlet's thread pool runs 20
at once: a burst of sign-ups or logins would take the pod past its memory
limit. At most ``PASSWORD_HASH_CONCURRENCY`` run at once; the others wait
their turn (size it with the pod's memory limit: 64 MiB each)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool
from eventlet.semaphore import BoundedSemaphore

from shared.config import settings

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults
_DUMMY_HASH = _hasher.hash("a password nobody has, to spend the same time on unknown emails")


_running = BoundedSemaphore(settings().password_hash_concurrency)


def hash_password(password: str) -> str:
    with _running:
        hashed: str = tpool.execute(_hasher.hash, password)
    return hashed


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the account exists (``password_hash`` None)."""

    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    with _running:
        verified: bool = tpool.execute(verify)
    return verified


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
