import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import samsa_client  # noqa: E402


@pytest.fixture(scope="session")
def bootstrap():
    return samsa_client.bootstrap()


@pytest.fixture(scope="session")
def admin(bootstrap):
    a = samsa_client.admin_client()
    samsa_client.wait_broker(a)
    return a
