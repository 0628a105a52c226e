"""The development token key: one per var directory, never read half-written."""

from __future__ import annotations

import threading
from pathlib import Path

from shared.config import load_settings


def test_processes_starting_together_share_one_complete_key(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.delenv("JWT_SECRET", raising=False)
    keys: list[str] = []

    def start() -> None:
        keys.append(load_settings().token_secret())

    threads = [threading.Thread(target=start) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0]) >= 32
    assert (tmp_path / "jwt-secret").read_text().strip() == keys[0]
    assert [p.name for p in tmp_path.iterdir()] == ["jwt-secret"]
