"""Fixtures several integration test modules share."""

from collections.abc import Iterator

import pytest

from tests.integration.mail import MailCatcher
from tests.integration.test_contracts_api import deal  # noqa: F401
from tests.integration.test_identity_api import api  # noqa: F401
from tests.integration.test_projects_api import market  # noqa: F401


@pytest.fixture(scope="session")
def mail_catcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailCatcher]:
    """One SMTP catcher for the session: each test's users have their own addresses."""
    catcher = MailCatcher(tmp_path_factory.mktemp("mail") / "mail")
    yield catcher
    catcher.stop()
