"""Root pytest configuration: docstring examples run as doctests against a test database."""

import pytest
from _pytest.doctest import DoctestItem


def pytest_collection_modifyitems(items):
    """Give every docstring example a (rolled-back) test database."""
    for item in items:
        if isinstance(item, DoctestItem):
            item.add_marker(pytest.mark.django_db)


@pytest.fixture(autouse=True)
def _doctest_names(request, doctest_namespace):
    """Make the public model names available to docstring examples, as in the docs."""
    if isinstance(request.node, DoctestItem):
        from container_manager.models import (
            ContainerExecution,
            ContainerJob,
            EnvironmentVariableTemplate,
            ExecutorHost,
        )

        doctest_namespace.update(
            ContainerExecution=ContainerExecution,
            ContainerJob=ContainerJob,
            EnvironmentVariableTemplate=EnvironmentVariableTemplate,
            ExecutorHost=ExecutorHost,
        )
