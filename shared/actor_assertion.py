"""Who is calling an RPC, as the gateway vouches for it.

The gateway authenticates the user (their access token), then signs, for each
RPC it makes, a short-lived assertion: the actor, their roles, the request's
idempotency key, and the one call it is for (``<service>.<method>``). A
service takes the actor only from an assertion it verifies
(:class:`VerifiedRpc`); a call without one, with a bad signature, for another
call or expired, is refused before any worker runs. Nameko's plain
``actor_id``/``actor_roles`` headers are ignored: anyone who can reach the
broker can set those.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from nameko.rpc import Rpc

from shared.context import ACTOR_ID, ACTOR_ROLES, REQUEST_KEY
from shared.signing import Signer, Verifier, verifier

ASSERTION = "actor_assertion"
"""The worker context key (header ``nameko.actor_assertion``) it travels under."""
ISSUER = "marketplace-gateway"
ALGORITHM = "EdDSA"
TTL_SECONDS = 60
"""Longer than any RPC waits in a queue (RPC_TIMEOUT), short enough to be worthless stolen."""
_ACTOR_KEYS = (ACTOR_ID, ACTOR_ROLES, REQUEST_KEY, ASSERTION)


class UnverifiedActor(Exception):
    """Not a :class:`shared.errors.ServiceError`: at the gateway it is an
    internal error (its keys are wrong), never a user's 401."""


@dataclass(frozen=True)
class Actor:
    actor_id: str
    roles: tuple[str, ...] = ()
    request_key: str | None = None


def sign_assertion(signer: Signer, actor: Actor, call: str, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": actor.actor_id,
        "roles": list(actor.roles),
        "call": call,
        "iat": issued,
        "exp": issued + TTL_SECONDS,
    }
    if actor.request_key:
        claims["rk"] = actor.request_key
    return jwt.encode(claims, signer.key, algorithm=ALGORITHM, headers={"kid": signer.key_id})


def verify_assertion(keys: Verifier, token: Any, call: str) -> Actor:
    if not isinstance(token, str) or not token:
        raise UnverifiedActor("the call carries no actor assertion")
    try:
        key = keys.keys.get(str(jwt.get_unverified_header(token).get("kid")))
        if key is None:
            raise UnverifiedActor("the actor assertion is signed by an unknown key")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["iss", "sub", "call", "iat", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise UnverifiedActor(f"the actor assertion does not verify: {exc}") from None
    if claims["call"] != call:
        raise UnverifiedActor(f"the actor assertion is for {claims['call']}, not {call}")
    roles = claims.get("roles") or []
    return Actor(str(claims["sub"]), tuple(str(r) for r in roles), claims.get("rk"))


def context_headers(headers: dict[str, Any], actor: Actor, assertion: str) -> dict[str, Any]:
    """Outgoing Nameko headers with the actor only as the signed assertion."""
    kept = {k: v for k, v in headers.items() if k.removeprefix("nameko.") not in _ACTOR_KEYS}
    kept[f"nameko.{ASSERTION}"] = assertion
    return kept


class VerifiedRpc(Rpc):  # type: ignore[misc]  # nameko is untyped
    """Nameko's RPC entrypoint, taking the actor only from a verified assertion.

    Raised here, :class:`UnverifiedActor` goes back to the caller as the
    call's error (Nameko's RPC consumer replies with it) and no worker runs."""

    def setup(self) -> None:
        super().setup()
        self.verifier = verifier("actor")

    def unpack_message_headers(self, message: Any) -> dict[str, Any]:
        data: dict[str, Any] = super().unpack_message_headers(message)
        token = data.get(ASSERTION)
        for key in _ACTOR_KEYS:
            data.pop(key, None)
        call = f"{self.container.service_name}.{self.method_name}"
        actor = verify_assertion(self.verifier, token, call)
        data[ACTOR_ID] = actor.actor_id
        data[ACTOR_ROLES] = ",".join(actor.roles)
        if actor.request_key:
            data[REQUEST_KEY] = actor.request_key
        return data
