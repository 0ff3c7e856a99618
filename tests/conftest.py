import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Healthd  # noqa: E402
from svc_mariadb import MariaDBFactory  # noqa: E402


@pytest.fixture
def healthd(tmp_path):
    """Factory: healthd(config_text, **kw) starts magento-healthd; all are stopped afterwards."""
    started = []

    def make(config_body, start=True, **kw):
        h = Healthd(str(tmp_path), config_body, **kw)
        started.append(h)
        if start:
            h.start()
        return h

    yield make
    for h in started:
        h.stop()


@pytest.fixture
def mariadb(tmp_path):
    """Factory for MariaDB servers; every server is stopped afterwards, also on failure."""
    factory = MariaDBFactory(str(tmp_path / "mariadb"))
    yield factory.new
    factory.stop_all()
