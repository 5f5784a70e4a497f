import pytest

from generations.errors import ErrorCode, GenerationError
from generations.pipeline import finalise, stages, statements
from tests.tiers import require_postgresql

# Its assertions report their values like a test's own.
pytest.register_assert_rewrite("generations.tests.pipeline.claims")


@pytest.fixture
def evaluations(monkeypatch):
    """The generation ids the final evaluation ran for, one entry per run."""
    calls = []
    original = finalise.evaluation_of

    def evaluation_of(generation_id):
        calls.append(generation_id)
        return original(generation_id)

    monkeypatch.setattr(finalise, "evaluation_of", evaluation_of)
    return calls


@pytest.fixture(params=["one statement", "in steps"])
def counting(request, monkeypatch):
    """Runs a test with each way of counting an ended item: one statement (PostgreSQL)
    and the portable transaction of three."""
    if request.param == "one statement":
        require_postgresql("counting in one statement runs UPDATEs inside WITH")
    if request.param == "in steps":
        monkeypatch.setattr(statements, "counts_in_one_statement", lambda: False)
    return request.param


@pytest.fixture
def analysis_unavailable(monkeypatch):
    """The analysis stage fails as it does while storage is down: a transient error."""

    def unavailable(generation, workdir):
        raise GenerationError(ErrorCode.STORAGE_UNAVAILABLE, "S3 is down.")

    monkeypatch.setattr(stages, "analysis_of", unavailable)
