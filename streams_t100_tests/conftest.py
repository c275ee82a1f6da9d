from pathlib import Path

import pytest

from streams_t100.simulator import Simulator


@pytest.fixture
def simulator():
    with Simulator() as running:
        yield running


@pytest.fixture
def duckdb_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "streams_t100.duckdb"
