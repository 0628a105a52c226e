"""Escrow routes: funding a contract's milestones, its escrow, your balance and
statement, and payouts: every route here that moves money needs an Idempotency-Key."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from gateway.endpoint import IDEMPOTENCY_HEADER, endpoint
from gateway.routes.base import RoutesBase
from services.escrow import api as escrow_api
from services.escrow import views as escrow_views
from shared.jsonready import json_ready


class EscrowRoutes(RoutesBase):
    """Money: funding, what escrow holds, balances, statements and payouts."""

    @endpoint(
        "POST",
        "/contracts/<contract_id>/fund",
        summary="Fund milestones: the buyer's card is charged into escrow",
        tags=("escrow",),
        body=escrow_api.FundRequest,
        response=escrow_api.FundingResponse,
        status=201,
        location="/contracts/{contract_id}/escrow",
        errors=(402, 404, 409),
        key_required=True,
        reads=("contract_views",),
    )
    def fund(self, request: Request, contract_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._known_contract(contract_id)
        return self.escrow.fund_milestones(
            contract_id, json_ready(body), request.headers[IDEMPOTENCY_HEADER]
        )

    # -- money -------------------------------------------------------------------

    @endpoint(
        "GET",
        "/contracts/<contract_id>/escrow",
        summary="The contract's escrow: what each milestone holds, and every posting",
        tags=("escrow",),
        response=escrow_api.ContractEscrowResponse,
        errors=(404,),
        reads=("contract_views", "escrow_views"),
    )
    def contract_escrow(self, request: Request, contract_id: str) -> dict[str, Any]:
        self._contract_for_party(contract_id)
        with self.escrow_views.connect() as conn:
            return escrow_views.contract_escrow(conn, contract_id)

    @endpoint(
        "GET",
        "/me/balance",
        summary="Your money: available to pay out, held in escrow, paid out",
        tags=("escrow",),
        response=escrow_api.BalanceResponse,
        reads=("escrow_views",),
    )
    def my_balance(self, request: Request) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.escrow_views.connect() as conn:
            return escrow_views.user_summary(conn, self.scope.principal.user_id)

    @endpoint(
        "GET",
        "/me/statement",
        summary="Your statement (format=csv for a spreadsheet), optionally for one contract",
        tags=("escrow",),
        query=escrow_api.StatementQuery,
        response=escrow_api.StatementResponse,
        alternatives=("text/csv",),
        reads=("escrow_views",),
    )
    def my_statement(self, request: Request, query: dict[str, Any]) -> Any:
        assert self.scope.principal is not None
        contract_id = str(query["contract_id"]) if query["contract_id"] else None
        with self.escrow_views.connect() as conn:
            lines = escrow_views.statement(conn, self.scope.principal.user_id, contract_id)
        if query["format"] == "csv":
            response = Response(escrow_views.statement_csv(lines), mimetype="text/csv")
            response.headers["Content-Disposition"] = 'attachment; filename="statement.csv"'
            return response
        return {"items": lines}

    @endpoint(
        "POST",
        "/me/payouts",
        summary="Pay out from your available balance (sellers)",
        tags=("escrow",),
        body=escrow_api.PayoutRequest,
        response=escrow_api.PayoutResponse,
        status=201,
        location="/me/statement",
        errors=(403, 409),
        key_required=True,
        role="seller",
        verified=True,
    )
    def payout(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.escrow.request_payout(json_ready(body), request.headers[IDEMPOTENCY_HEADER])
