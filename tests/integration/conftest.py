"""Fixtures several integration test modules share."""

from tests.integration.test_contracts_api import deal  # noqa: F401
