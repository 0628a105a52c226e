"""Every route bounds its request body before anything reads it (issue 17): a
body over the limit is refused at once with a 413 problem, a chunked one with
411, and uploads keep their own, larger limit. Real HTTP against real identity
and gateway containers."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from gateway.server import MAX_BODY_BYTES
from gateway.service import GatewayService
from services.identity.service import IdentityService
from shared.eventstore.sql import SqlEventStore
from shared.testing import free_port, fresh_postgres_database
from tests.integration.test_identity_api import SECRET, Api, assert_problem

pytestmark = pytest.mark.integration

UPLOAD_MAX_BYTES = 3_000_000  # above the general limit, so that uploads show their own


@pytest.fixture
def api(
    fresh_pg: str, postgres_server: str, amqp_uri: str, tmp_path: Path, container_factory: Any
) -> Iterator[Api]:
    with fresh_postgres_database(postgres_server) as gateway_db:
        port = free_port()
        common = {"AMQP_URI": amqp_uri, "EVENT_STORE_URL": fresh_pg, "JWT_SECRET": SECRET}
        container_factory(IdentityService, {**common, "DATABASE_URL": fresh_pg}).start()
        container_factory(
            GatewayService,
            {
                **common,
                "DATABASE_URL": gateway_db,
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
                "BLOB_DIR": str(tmp_path / "blobs"),
                "UPLOAD_MAX_BYTES": UPLOAD_MAX_BYTES,
            },
        ).start()
        store = SqlEventStore(fresh_pg)
        yield Api(f"http://127.0.0.1:{port}", store)
        store.close()


def declare_and_send_little(
    api: Api, path: str, headers: dict[str, str], declared: int, sent: bytes = b"{"
) -> tuple[int, dict[str, str], bytes]:
    """Send a request that declares a body of ``declared`` bytes but sends only
    ``sent``, and read the answer: one that came while the rest was never sent
    was decided without reading the body."""
    host, port = api.base.removeprefix("http://").split(":")
    lines = [
        f"POST /api/v1{path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {declared}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + sent)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)  # a timeout here: the gateway waits for the body
            assert chunk, "the gateway closed the connection without an answer"
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        answer_headers = {
            name.lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines)
        }
        length = int(answer_headers["content-length"])
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk
            body += chunk
    return int(status_line.split()[1]), answer_headers, body


def test_an_oversized_body_with_an_idempotency_key_is_refused_before_it_is_read(api: Api):
    """The route takes no body schema, but the key's fingerprint would read the
    whole body: the declared size alone is refused, at once."""
    buyer = api.signup(["buyer"])
    status, headers, body = declare_and_send_little(
        api,
        f"/proposals/{uuid.uuid4()}/shortlist",
        {
            "Authorization": f"Bearer {buyer['access_token']}",
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/json",
            "X-Request-ID": "limit-1",
        },
        declared=500 * 1024 * 1024,
    )
    assert status == 413
    assert headers["content-type"].startswith("application/problem+json")
    assert headers["x-request-id"] == "limit-1"
    problem = orjson.loads(body)
    assert problem["status"] == 413 and problem["code"] == "request_entity_too_large"
    assert problem["max_bytes"] == MAX_BODY_BYTES


def test_the_limit_comes_before_authentication(api: Api):
    status, _, body = declare_and_send_little(
        api, "/auth/login", {"Content-Type": "application/json"}, declared=MAX_BODY_BYTES + 1
    )
    assert status == 413 and orjson.loads(body)["code"] == "request_entity_too_large"


def test_a_json_body_up_to_the_limit_is_read_and_one_byte_more_is_not(api: Api):
    token = api.signup(["buyer"])["access_token"]
    prefix, suffix = b'{"title": "', b'"}'
    at_limit = prefix + b"x" * (MAX_BODY_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(at_limit) == MAX_BODY_BYTES
    headers = {"Content-Type": "application/json"}
    read = api.post("/projects", token=token, data=at_limit, headers=dict(headers))
    assert_problem(read, 422, "invalid_input")  # validated: the title is far too long
    over = api.post("/projects", token=token, data=at_limit + b" ", headers=dict(headers))
    assert assert_problem(over, 413, "request_entity_too_large")["max_bytes"] == MAX_BODY_BYTES


def test_a_chunked_body_is_refused_with_411(api: Api):
    token = api.signup(["buyer"])["access_token"]

    def chunks() -> Iterator[bytes]:
        yield b'{"title": "a project"'
        yield b"}"

    response = requests.post(
        api.url("/projects"),
        data=chunks(),  # requests sends a generator chunked
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert_problem(response, 411, "length_required")


def test_uploads_keep_their_larger_limit(api: Api):
    token = api.signup(["seller"])["access_token"]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    big = b"x" * (2 * MAX_BODY_BYTES)  # over the general limit, under the upload limit
    uploaded = api.upload(token, big, "attachment", "big.txt", key=key["Idempotency-Key"])
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["size"] == len(big)
    status, _, body = declare_and_send_little(
        api,
        "/files",
        {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "multipart/form-data; boundary=b",
        },
        declared=100 * UPLOAD_MAX_BYTES,
        sent=b"--b\r\n",
    )
    assert status == 413
    assert orjson.loads(body)["max_bytes"] > UPLOAD_MAX_BYTES
