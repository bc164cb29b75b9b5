"""The test suite."""

import pytest

# Before anything imports it, so that a failing assertion in a shared helper reports its values as one in a test.
pytest.register_assert_rewrite("tests.helpers")
