"""Checking files attached to a command, from what identity published of them.

A party may attach only files they uploaded themselves; who else may then
read them is granted by identity when it learns of the attachment. A service
that takes attachments learns identity's ``FileUploaded`` (``FILE_FACTS``)
into its own :class:`shared.facts.Facts`.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.errors import InvalidInput
from shared.facts import Facts
from shared.schemas import PublishedEvent
from shared.validation import known_id

FILE_FACTS = ("FileUploaded",)
"""Identity's published events a service learns to check attachments."""


def _owner(state: str, event: PublishedEvent) -> str:
    return str(event.data["owner_id"]) if event.type == "FileUploaded" else state


def check_own_files(facts: Facts, owner_id: str, file_ids: Iterable[str]) -> list[str]:
    """The ids as strings, each an uploaded file of ``owner_id``; 422 otherwise."""
    checked = []
    for file_id in dict.fromkeys(str(f) for f in file_ids):
        owner = facts.require("identity", known_id(file_id, "file"), _owner, "", bool, "file")
        if owner != owner_id:
            raise InvalidInput(
                "attach files you uploaded yourself", {"fields": {"file_ids": [file_id]}}
            )
        checked.append(file_id)
    return checked
