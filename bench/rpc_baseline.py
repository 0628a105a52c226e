"""Baseline services for bench/gateway_reads.py: a bare Nameko ``@http``
handler, one that makes a single RPC, and the service it calls."""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from nameko.cli.run import run  # noqa: E402
from nameko.rpc import RpcProxy, rpc  # noqa: E402
from nameko.web.handlers import http  # noqa: E402


class Echo:
    name = "bench_echo"

    @rpc
    def ping(self) -> str:
        return "pong"


class Baseline:
    name = "bench_http"
    echo = RpcProxy("bench_echo")

    @http("GET", "/bare")
    def bare(self, request: object) -> str:
        return "ok"

    @http("GET", "/rpc")
    def one_rpc(self, request: object) -> str:
        return self.echo.ping()


if __name__ == "__main__":
    which, amqp_uri = sys.argv[1], sys.argv[2]
    config = {"AMQP_URI": amqp_uri}
    if which == "http":
        config["WEB_SERVER_ADDRESS"] = f"127.0.0.1:{sys.argv[3]}"
        run([Baseline], config)
    else:
        run([Echo], config)
