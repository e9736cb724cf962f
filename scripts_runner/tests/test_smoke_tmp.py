import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_hello(runner, execute):
    run = execute(runner, "import sys\nprint('hello')\nprint('oops', file=sys.stderr)\nimport pandas\nprint(pandas.__name__)\n")
    print(run.status, run.end_reason, run.exit_code, run.error, run.message)
    print(list(run.chunks.values_list("seq", "stream", "text")))
    assert run.status == "succeeded"
