"""Fixtures of the script runner's tests.

`user`, `other_user`, `admin_user`, `auth_client`, `live_platform` … come from
the root conftest; here only what is specific to scripts.
"""

import pytest

from scripts_runner import services


@pytest.fixture(scope="session")
def _run_root(tmp_path_factory):
    # One run root per test process: a root worker builds its view of the run root once
    # (a mount namespace kept by a helper process), as a real worker does.
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(autouse=True)
def _runner_dirs(settings, _run_root):
    settings.SCRIPTS_RUNNER_RUN_ROOT = str(_run_root)


def require_sandbox() -> None:
    """Skip (fail on CI) when bubblewrap cannot start here, e.g. user namespaces disabled."""
    import os

    from scripts_runner import sandbox

    ok, error = sandbox.probe()
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the script sandbox cannot start on this CI host: {error}")
        pytest.skip(f"the script sandbox cannot start here: {error}")


@pytest.fixture
def sandbox_available():
    require_sandbox()


@pytest.fixture
def runner(user):
    """The user holds the permission to run scripts."""
    services.script_access_set(user=user, run=True)
    return user


@pytest.fixture
def make_script():
    def make(owner, code: str, name: str = "job.py"):
        return services.script_create(owner=owner, name=name, code=code.encode())

    return make


@pytest.fixture
def execute(make_script):
    """Create a script and run it inline (real sandbox, real subprocess, this process as the worker)."""
    from scripts_runner import runner as runner_module

    def run(owner, code: str, *, args=None, env=None, name="job.py", network=False):
        script = make_script(owner, code, name=name)
        run = services.script_run_create(script=script, user=owner, args=args, env=env, network=network)
        runner_module.script_run_execute(pk=run.pk)
        run.refresh_from_db()
        return run

    return run

