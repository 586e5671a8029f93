"""Schemathesis against the console's OpenAPI document: bounded property-based calls find no 5xx.

Every operation gets ``max_examples=20`` generated requests (valid and boundary inputs) with an analyst's
Bearer token, on a seeded sample installation, in-process over ASGI. A response >= 500 fails the test;
so does a response that does not match its documented schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from console import auth, sample
from console.app import create_app
from crawler.config import load_settings
from storage.db import Database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    data: Path = tmp_path_factory.mktemp("fuzz") / "data"
    data.mkdir()
    settings = load_settings(env={}, data_dir=data)
    db = Database(settings.db_url)
    db.migrate()
    sample.seed_sample(db, settings)
    sample.seed_batch(db, settings)
    with db.session() as s:
        auth.add_user(s, "fuzz", "analyst", "fuzz-password", actor="test")
        token = auth.issue_token(s, "fuzz", actor="test")
    yield create_app(settings, db), token
    db.dispose()


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


# The pytest plugin of schemathesis does not load under this pytest, so each operation's strategy is run
# with Hypothesis directly: the same generation, bounded per operation.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_has_no_server_errors(installation: tuple[Any, str], mode: GenerationMode) -> None:
    app, token = installation
    operations = _operations(app)
    assert {op.label for op in operations} >= {
        "GET /api/v1/candidates",
        "POST /api/v1/decisions",
        "GET /api/v1/batches",
        "GET /api/v1/rechecks",
        "GET /api/v1/terms",
    }
    calls: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @hyp_settings(
            max_examples=20,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            calls.append(response.status_code)
            label = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{label}: {response.text[:300]}"
            if mode is GenerationMode.POSITIVE and response.status_code < 300:
                case.validate_response(response)

        try:
            run()
        except Unsatisfiable:
            # an operation without parameters or body has no invalid input to generate
            assert mode is GenerationMode.NEGATIVE, operation.label
    assert len(calls) >= len(operations)
