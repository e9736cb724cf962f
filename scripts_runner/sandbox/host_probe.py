"""Whether the sandbox can start on this host: one real sandboxed run of a tiny script."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from scripts_runner import conf
from scripts_runner.sandbox.launch import SandboxUnavailable
from scripts_runner.sandbox.preparation import prepare, release
from scripts_runner.sandbox.spawn import start


@functools.lru_cache(maxsize=1)
def probe() -> tuple[bool, str]:
    """Can the sandbox start here? (ok, error text for the operator's log). Cached per process."""
    import tempfile

    launch = None
    try:
        root = conf.RUN_ROOT
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="sr-probe-", dir=root) as tmp:
            launch = prepare(
                run_dir=Path(tmp), script_name="probe.py", code=b"print('ok')\n", args=[], env={},
                network=False, sandboxed=True,
            )
            try:
                proc = start(launch)
                try:
                    out, err = proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, err = proc.communicate()
                done = subprocess.CompletedProcess(launch.argv, proc.returncode, out, err)
            finally:
                release(launch)
            if done.returncode != 0 or done.stdout.strip() != b"ok":
                return False, (done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}")[:500]
            return True, ""
    except SandboxUnavailable as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"[:500]
