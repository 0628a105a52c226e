"""Checking files attached to a command, from identity's published file streams.

A party may attach only files they uploaded themselves; who else may then
read them is granted by identity when it learns of the attachment.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.errors import InvalidInput
from shared.eventlog import ServiceEventLog
from shared.validation import known_id


def check_own_files(
    event_log: ServiceEventLog, owner_id: str, file_ids: Iterable[str]
) -> list[str]:
    """The ids as strings, each an uploaded file of ``owner_id``; 422 otherwise."""
    checked = []
    for file_id in dict.fromkeys(str(f) for f in file_ids):
        events, _ = event_log.load(f"file-{known_id(file_id, 'file')}")
        uploaded = next((e for e in events if e.type == "FileUploaded"), None)
        if uploaded is None or uploaded.data["owner_id"] != owner_id:
            raise InvalidInput(
                "attach files you uploaded yourself", {"fields": {"file_ids": [file_id]}}
            )
        checked.append(file_id)
    return checked
