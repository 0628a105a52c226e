"""Reading the mails the marketplace sends, from the catcher ``make run`` runs
(``python -m shared.mailcatcher``): tests start one and follow the links."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from shared.mailcatcher import LINK
from shared.testing import free_port
from tests.integration.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


def read_mails(directory: Path) -> list[EmailMessage]:
    mails = []
    for path in sorted(directory.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        mails.append(message)
    return mails


def mails_to(directory: Path, to: str, kind: str) -> list[EmailMessage]:
    return [
        m
        for m in read_mails(directory)
        if m["To"] == to.lower() and m["X-Marketplace-Kind"] == kind
    ]


def wait_for_mail(
    directory: Path, to: str, kind: str, count: int = 1, timeout: float = 30
) -> EmailMessage:
    """The ``count``-th mail of ``kind`` to ``to`` (waiting for it)."""
    found = wait_until(
        lambda: (mails := mails_to(directory, to, kind)) and len(mails) >= count and mails,
        timeout=timeout,
        interval=0.1,
        what=f"mail {kind} #{count} to {to}",
    )
    return found[count - 1]


def link_token(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    (link,) = LINK.findall(body.get_content())
    return parse_qs(urlsplit(link).query)["token"][0]


class MailCatcher:
    """The catcher as its own process (as under ``make run``), on a free port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        directory.mkdir(parents=True, exist_ok=True)
        self.log = (directory.parent / "mailcatcher.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shared.mailcatcher",
                "--url",
                self.url,
                "--dir",
                str(directory),
            ],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the mail catcher did not start") from None
                time.sleep(0.1)

    def wait_for(self, to: str, kind: str, count: int = 1) -> EmailMessage:
        return wait_for_mail(self.directory, to, kind, count)

    def wait_for_none(self, to: str, kind: str, seconds: float = 1.0) -> list[EmailMessage]:
        """The mails of ``kind`` to ``to`` after ``seconds`` (expected: none)."""
        time.sleep(seconds)
        return mails_to(self.directory, to, kind)

    def token(self, to: str, kind: str, count: int = 1) -> str:
        return link_token(self.wait_for(to, kind, count))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()
