"""File contents, stored by their sha256 (content-addressed) and streamed in chunks.

``BlobStore`` is the port; ``FilesystemBlobStore`` keeps blobs under a
directory. An S3-compatible store implements the same three methods (put with
a streaming multipart upload keyed by the digest, open as a streaming GET).
The content type is decided from the bytes, never from the client's claim.
"""

from __future__ import annotations

import abc
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import filetype

from shared.errors import InvalidInput, NotFound

CHUNK_SIZE = 64 * 1024
SNIFF_BYTES = 8192
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
DOCUMENT_TYPES = frozenset(
    {
        "application/pdf",
        "application/zip",
        "text/plain",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)
ALLOWED_TYPES = {
    "photo": IMAGE_TYPES,
    "portfolio": IMAGE_TYPES | DOCUMENT_TYPES,
    "attachment": IMAGE_TYPES | DOCUMENT_TYPES,
    "deliverable": IMAGE_TYPES | DOCUMENT_TYPES,
    "message": IMAGE_TYPES | DOCUMENT_TYPES,
}


class FileTooLarge(InvalidInput):
    status = 413
    code = "file_too_large"


class UnsupportedFileType(InvalidInput):
    status = 415
    code = "unsupported_file_type"


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    content_type: str


def sniff_content_type(head: bytes) -> str | None:
    """The type the first bytes show, or None if they show none we know."""
    kind = filetype.guess(head)
    if kind is not None:
        mime: str = kind.mime
        return mime
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # a multi-byte character cut at the end of the sniffed window is fine
            if exc.start < len(head) - 3:
                return None
        return "text/plain"
    return None


class BlobStore(abc.ABC):
    @abc.abstractmethod
    def put(self, chunks: Iterable[bytes], max_bytes: int, allowed: frozenset[str]) -> StoredBlob:
        """Store a stream; FileTooLarge past ``max_bytes``, UnsupportedFileType
        unless the bytes are of an ``allowed`` type. Nothing is kept on error."""

    @abc.abstractmethod
    def open(self, sha256: str) -> BinaryIO: ...

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool: ...

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        with self.open(sha256) as handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk


class FilesystemBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise NotFound("no such file")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, chunks: Iterable[bytes], max_bytes: int, allowed: frozenset[str]) -> StoredBlob:
        digest = hashlib.sha256()
        size = 0
        head = b""
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise FileTooLarge(
                            f"the file is larger than {max_bytes} bytes", {"max_bytes": max_bytes}
                        )
                    if len(head) < SNIFF_BYTES:
                        head += chunk[: SNIFF_BYTES - len(head)]
                    digest.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            if size == 0:
                raise InvalidInput("the file is empty", {"fields": {"file": ["Empty file."]}})
            content_type = sniff_content_type(head)
            if content_type not in allowed:
                raise UnsupportedFileType(
                    f"files of type {content_type or 'unknown'} are not accepted here",
                    {"detected": content_type, "allowed": sorted(allowed)},
                )
            sha256 = digest.hexdigest()
            final = self._path(sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, final)  # same content, same name: replacing is harmless
            return StoredBlob(sha256, size, content_type)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self._path(sha256).open("rb")
        except FileNotFoundError:
            raise NotFound("no such file") from None

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()
