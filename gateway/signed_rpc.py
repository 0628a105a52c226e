"""The gateway's RPC proxies: every call carries the signed actor assertion.

The assertion is made when the call is sent, from the worker's context as it
is then (the authenticated user, the request's idempotency key), so no route
has to remember to refresh it."""

from __future__ import annotations

from typing import Any

from nameko.rpc import MethodProxy, RpcProxy, ServiceProxy

from shared.actor_assertion import Actor, context_headers, sign_assertion
from shared.context import ACTOR_ID, ACTOR_ROLES, REQUEST_KEY, roles_of
from shared.signing import Signer, signer


def actor_of(data: dict[str, Any]) -> Actor:
    roles = roles_of(data.get(ACTOR_ROLES))
    return Actor(str(data.get(ACTOR_ID) or "anonymous"), roles, data.get(REQUEST_KEY) or None)


class SignedMethodProxy(MethodProxy):  # type: ignore[misc]  # nameko is untyped
    def __init__(self, signer: Signer, *args: Any, **options: Any) -> None:
        self.signer = signer
        super().__init__(*args, **options)

    def get_message_headers(self, worker_ctx: Any) -> dict[str, Any]:
        actor = actor_of(worker_ctx.data)
        call = f"{self.service_name}.{self.method_name}"
        headers: dict[str, Any] = super().get_message_headers(worker_ctx)
        return context_headers(headers, actor, sign_assertion(self.signer, actor, call))


class SignedServiceProxy(ServiceProxy):  # type: ignore[misc]
    def __init__(self, signer: Signer, *args: Any, **options: Any) -> None:
        self.signer = signer
        super().__init__(*args, **options)

    def __getattr__(self, name: str) -> SignedMethodProxy:
        return SignedMethodProxy(
            self.signer,
            self.worker_ctx,
            self.service_name,
            name,
            self.reply_listener,
            **self.options,
        )


class SignedRpcProxy(RpcProxy):  # type: ignore[misc]
    def setup(self) -> None:
        super().setup()
        self.signer = signer("actor")

    def get_dependency(self, worker_ctx: Any) -> SignedServiceProxy:
        return SignedServiceProxy(
            self.signer, worker_ctx, self.target_service, self.rpc_reply_listener, **self.options
        )
