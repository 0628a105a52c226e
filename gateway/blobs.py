"""Uploads as a gateway dependency: the blob store (``BLOB_DIR``, a directory by
default) and the size limit (``UPLOAD_MAX_BYTES``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider

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
