"""Which failures the gateway answers as retryable 503s."""

from __future__ import annotations

import kombu.exceptions
import orjson

from gateway.errors import to_response


def test_a_broker_away_while_publishing_an_rpc_is_a_retryable_503():
    response = to_response(kombu.exceptions.OperationalError("[Errno 111] ECONNREFUSED"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert orjson.loads(response.get_data())["code"] == "unavailable"


def test_an_unexpected_error_stays_a_500():
    assert to_response(ValueError("a bug")).status_code == 500
