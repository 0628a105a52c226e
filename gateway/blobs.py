"""Uploads as a gateway dependency: the blob store (``BLOB_DIR``, a directory by
default) and the size limit (``UPLOAD_MAX_BYTES``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from shared.blobs import BlobStore, FilesystemBlobStore
from shared.config import settings


@dataclass(frozen=True)
class Uploads:
    store: BlobStore
    max_bytes: int


class Blobs(DependencyProvider):
    def setup(self) -> None:
        config = self.container.config
        root = config.get("BLOB_DIR") or settings().blob_dir
        max_bytes = int(config.get("UPLOAD_MAX_BYTES") or settings().upload_max_bytes)
        self.uploads = Uploads(FilesystemBlobStore(Path(root)), max_bytes)

    def get_dependency(self, worker_ctx: Any) -> Uploads:
        return self.uploads


def file_response(blobs: Uploads, record: dict[str, Any]) -> Response:
    """A file's content from the blob store, as a download."""
    response = Response(
        blobs.store.iter_chunks(record["sha256"]),
        mimetype=record["content_type"],
        direct_passthrough=True,
    )
    response.headers["Content-Length"] = str(record["size"])
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(record['filename'])}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["ETag"] = f'"{record["sha256"]}"'
    public = record["visibility"] == "public"
    response.headers["Cache-Control"] = "public, max-age=3600" if public else "private, no-store"
    return response
