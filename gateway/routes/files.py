"""Files routes: uploads (multipart, streamed into the blob store), your files,
and downloads."""

from __future__ import annotations

import unicodedata
from typing import Any

from werkzeug.wrappers import Request, Response

from gateway.blobs import file_response
from gateway.endpoint import endpoint
from gateway.routes.base import RoutesBase, read_when_visible
from services.identity import api as identity_api
from services.identity import views as identity_views
from shared.blobs import ALLOWED_TYPES, CHUNK_SIZE
from shared.errors import InvalidInput, NotFound
from shared.pagination import PageQuery, page_schema

UPLOAD_FORM = {
    "type": "object",
    "required": ["file", "purpose"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "purpose": {"type": "string", "enum": sorted(ALLOWED_TYPES)},
    },
}


def _seen(conn: Any, file_id: str) -> str:
    owner = identity_views.file_owners(conn, [file_id]).get(file_id)
    if owner is None:
        raise NotFound("not yet visible")
    return owner


MULTIPART_OVERHEAD = 64 * 1024
"""What a multipart form adds around the file: boundaries, part headers, ``purpose``."""


def upload_body_limit(service: Any) -> int:
    """An upload's body may be as large as the blob store takes, plus the form."""
    limit: int = service.blobs.max_bytes
    return limit + MULTIPART_OVERHEAD


def _safe_filename(name: str | None) -> str:
    cleaned = "".join(
        ch
        for ch in unicodedata.normalize("NFC", name or "")
        if ch.isprintable() and ch not in '/\\"'
    )
    return cleaned.strip()[:200] or "file"


class FilesRoutes(RoutesBase):
    """Uploads and downloads; the identity service keeps each file's record."""

    # -- files -----------------------------------------------------------------

    @endpoint(
        "POST",
        "/files",
        summary="Upload a file (multipart form: file, purpose)",
        tags=("files",),
        response=identity_api.FileResponse,
        status=201,
        location="/files/{file_id}",
        multipart=UPLOAD_FORM,
        errors=(413, 415),
        max_body=upload_body_limit,
        reads=("profiles",),
    )
    def upload(self, request: Request) -> dict[str, Any]:
        limit = self.blobs.max_bytes
        purpose = request.form.get("purpose", "")
        if purpose not in ALLOWED_TYPES:
            raise InvalidInput(
                "say what the file is for",
                {"fields": {"purpose": [f"One of: {', '.join(sorted(ALLOWED_TYPES))}."]}},
            )
        upload = request.files.get("file")
        if upload is None:
            raise InvalidInput(
                "attach the file as the form field 'file'", {"fields": {"file": ["Missing."]}}
            )
        chunks = iter(lambda: upload.stream.read(CHUNK_SIZE), b"")
        stored = self.blobs.store.put(chunks, max_bytes=limit, allowed=ALLOWED_TYPES[purpose])
        record = self.identity.record_file(
            stored.sha256,
            stored.size,
            stored.content_type,
            _safe_filename(upload.filename),
            purpose,
        )
        # Read-your-writes: a file can be attached as soon as its upload answered.
        file_id = str(record["file_id"])
        read_when_visible(self.profiles, lambda conn: _seen(conn, file_id))
        return record

    @endpoint(
        "GET",
        "/files",
        summary="Your uploaded files, newest first",
        tags=("files",),
        query=PageQuery,
        response=page_schema(identity_api.FileResponse),
        reads=("profiles",),
    )
    def my_files(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.profiles.connect() as conn:
            return identity_views.list_files(
                conn, self.scope.principal.user_id, query["limit"], query["cursor"]
            )

    @endpoint(
        "GET",
        "/files/<file_id>",
        summary="A file's record",
        tags=("files",),
        auth="optional",
        response=identity_api.FileResponse,
        errors=(404,),
    )
    def file_record(self, request: Request, file_id: str) -> dict[str, Any]:
        return self.identity.file_for_download(file_id)

    @endpoint(
        "GET",
        "/files/<file_id>/content",
        summary="Download a file",
        tags=("files",),
        auth="optional",
        errors=(404,),
    )
    def download(self, request: Request, file_id: str) -> Response:
        return file_response(self.blobs, self.identity.file_for_download(file_id))
