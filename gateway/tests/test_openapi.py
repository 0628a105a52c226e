"""The OpenAPI document is generated cleanly from every route's schemas."""

from __future__ import annotations

import warnings

import gateway.service  # noqa: F401 - registers the routes
from gateway.openapi import openapi_document


def test_document_builds_without_warnings_and_names_every_schema_once():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. two schemas resolving to one name
        document = openapi_document.__wrapped__()
    assert document["openapi"] == "3.0.3"
    assert len(document["paths"]) >= 40
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], f"{method} {path} documents no response"
            assert "422" in operation["responses"], f"{method} {path} lacks its validation error"
