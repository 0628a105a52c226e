"""Checking files attached to a command, from what identity published of them.

A party may attach only files they uploaded themselves, for a fitting purpose
(``FITS``); who else may then read them is granted by identity when it learns
of the attachment (a project's attachments: whoever can read the project; a
proposal's: the project's buyer; deliverables and message files: the other
party). A service that takes attachments learns identity's ``FileUploaded``
(``FILE_FACTS``) into its own :class:`shared.facts.Facts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.errors import InvalidInput
from shared.facts import Facts
from shared.schemas import PublishedEvent
from shared.validation import known_id

FILE_FACTS = ("FileUploaded",)
"""Identity's published events a service learns to check attachments."""

FITS: Mapping[str, frozenset[str]] = {
    "project": frozenset({"attachment"}),
    "proposal": frozenset({"attachment", "portfolio"}),
    "deliverable": frozenset({"deliverable", "attachment"}),
    "message": frozenset({"message", "attachment", "deliverable", "portfolio"}),
}
"""The upload purposes a file may have to be attached to each kind of thing."""


def _uploaded(state: tuple[str, str], event: PublishedEvent) -> tuple[str, str]:
    if event.type == "FileUploaded":
        return str(event.data["owner_id"]), str(event.data["purpose"])
    return state


def refusal(
    file_id: str, owner: str | None, purpose: str | None, owner_id: str, kind: str, field: str
) -> InvalidInput | None:
    """Why ``file_id`` may not be attached by ``owner_id`` to a ``kind`` (None if it may)."""
    if owner != owner_id:
        return InvalidInput(
            "attach files you uploaded yourself", {"fields": {field: [f"Not yours: {file_id}."]}}
        )
    if purpose not in FITS[kind]:
        fitting = ", ".join(sorted(FITS[kind]))
        return InvalidInput(
            f"a file uploaded for {purpose!r} cannot be attached here: upload it as {fitting}",
            {"fields": {field: [f"Uploaded for {purpose}: {file_id}."]}},
        )
    return None


def check_own_files(
    facts: Facts, owner_id: str, file_ids: Iterable[str], kind: str, field: str = "file_ids"
) -> list[str]:
    """The ids as strings, each a file ``owner_id`` uploaded for a purpose that
    fits ``kind`` (a key of ``FITS``); 422 otherwise."""
    checked = []
    for file_id in dict.fromkeys(str(f) for f in file_ids):
        owner, purpose = facts.require(
            "identity", known_id(file_id, "file"), _uploaded, ("", ""), lambda s: bool(s[0]), "file"
        )
        refused = refusal(file_id, owner, purpose, owner_id, kind, field)
        if refused is not None:
            raise refused
        checked.append(file_id)
    return checked


def check_samples(item_ids: list[str], portfolio: frozenset[str]) -> None:
    """Samples shown on a proposal are items of the seller's own portfolio."""
    foreign = [i for i in item_ids if i not in portfolio]
    if foreign:
        raise InvalidInput(
            "show samples from your own portfolio",
            {"fields": {"portfolio_item_ids": [f"Not in your portfolio: {', '.join(foreign)}."]}},
        )
