"""Schemathesis against the console's OpenAPI document: bounded property-based calls find no 5xx.

Every operation gets ``max_examples=30`` generated requests (valid and boundary inputs, and invalid ones)
with an analyst's and with an auditor's Bearer token, on a seeded sample installation that also holds
hostile seller text, in-process over ASGI. A response >= 500 fails the test; so does any response that
does not conform to the document (status code documented, content type, body schema, headers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import console_sample as sample
import pytest
import schemathesis
from console_helpers import installation as make_installation
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from console import auth
from console.app import create_app
from crawler.config import Settings, load_settings
from storage.db import Database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    def seed(db: Database, settings: Settings) -> None:
        sample.seed_sample(db, settings)
        sample.seed_batch(db, settings)
        sample.seed_hostile(db, settings)

    data = make_installation(tmp_path_factory.mktemp("fuzz"), seed, users=("siti", "audi"))
    settings = load_settings(env={}, data_dir=data)
    db = Database(settings.db_url)
    with db.session() as s:
        tokens = {
            role: auth.issue_token(s, name, actor="test")
            for name, role in (("siti", "analyst"), ("audi", "auditor"))
        }
    yield create_app(settings, db), tokens
    db.dispose()


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


# The pytest plugin of schemathesis does not load under this pytest, so each operation's strategy is run
# with Hypothesis directly: the same generation, bounded per operation.
@pytest.mark.parametrize("role", ["analyst", "auditor"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_has_no_server_errors(
    installation: tuple[Any, dict[str, str]], mode: GenerationMode, role: str
) -> None:
    app, tokens = installation
    token = tokens[role]
    operations = _operations(app)
    assert {op.label for op in operations} >= {
        "GET /api/v1/candidates",
        "POST /api/v1/decisions",
        "GET /api/v1/batches",
        "GET /api/v1/rechecks",
        "GET /api/v1/terms",
        "GET /api/v1/decisions",
        "GET /api/v1/batches/{number}",
        "POST /api/v1/batches",
        "POST /api/v1/terms/{term_id}",
    }
    calls: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @hyp_settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            calls.append(response.status_code)
            label = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{label}: {response.text[:300]}"
            assert (response.headers.get("content-type") or [""])[0].startswith("application/json"), label
            case.validate_response(response)  # status documented, body and headers as the schema says

        try:
            run()
        except Unsatisfiable:
            # an operation without parameters or body has no invalid input to generate
            assert mode is GenerationMode.NEGATIVE, operation.label
    assert len(calls) >= len(operations)


def test_openapi_lists_the_installed_platforms(installation: tuple[Any, dict[str, str]]) -> None:
    """Platform fields carry the installation's registry as their enum (no internal mark leaks out)."""
    app, _tokens = installation
    schema = app.openapi()
    text = json.dumps(schema)
    assert "x-tertib-platform" not in text
    param = next(
        p for p in schema["paths"]["/api/v1/candidates"]["get"]["parameters"] if p["name"] == "platform"
    )
    enums = [s.get("enum") for s in param["schema"].get("anyOf", [param["schema"]]) if "enum" in s]
    assert enums == [list(app.state.console.settings.registry.names)]
