"""A local SMTP server that keeps every mail: ``python -m shared.mailcatcher``.

For development (``make run`` runs it from the Procfile) and tests. It listens
where ``SMTP_URL`` points (``smtp://127.0.0.1:8025`` by default), writes each
mail it receives to ``$VAR_DIR/mail/`` (one ``.eml`` file each, written whole
before it appears) and prints its recipient, subject and links, so every
mail-driven step (verifying an address, resetting a password) can be followed
from the terminal. It delivers nothing anywhere.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller

from shared.config import settings

LINK = re.compile(r"https?://[^\s<>\"]+")


class Keeper:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        message = message_from_bytes(content, policy=policy.default)
        with self.lock:
            self.count += 1
            name = f"{time.time_ns()}-{self.count:06d}.eml"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, self.directory / name)
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        links = " ".join(LINK.findall(text))
        recipients = ", ".join(envelope.rcpt_tos)
        print(f"mail to {recipients}: {message['Subject']}  {links}  ({name})", flush=True)
        return "250 kept"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mailcatcher", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None, help="where to listen (default: SMTP_URL)")
    parser.add_argument("--dir", default=None, help="where to keep mails (default: VAR_DIR/mail)")
    args = parser.parse_args(argv)
    url = urlsplit(args.url or settings().smtp_url)
    directory = Path(args.dir) if args.dir else settings().var_dir / "mail"
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(
        Keeper(directory), hostname=url.hostname or "127.0.0.1", port=url.port or 8025
    )
    try:
        controller.start()
    except (OSError, RuntimeError) as exc:
        print(f"mailcatcher: cannot listen on {url.netloc}: {exc}", file=sys.stderr)
        return 1
    print(f"catching mail on {controller.hostname}:{controller.port} into {directory}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
