"""Reading the OOM-kill counters and laying out run cgroups (no real run: see test_sandbox_runs.py)."""

from scripts_runner import sandbox
from scripts_runner.sandbox import spawn


def _launch(path, version):
    limits = sandbox.Limits(cpu_seconds=1, memory_bytes=1, open_files=1, processes=1, file_bytes=1, tmp_bytes=1)
    return sandbox.Launch(argv=[], env={}, cwd="/", sandboxed=True, limits=limits, memory_cgroup=str(path),
                          memory_cgroup_version=version)


def test_oom_kills_v2_memory_events(tmp_path):
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 1\n")
    assert sandbox.oom_kills(_launch(tmp_path, 2)) == 2


def test_oom_kills_v1_oom_control(tmp_path):
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert sandbox.oom_kills(_launch(tmp_path, 1)) == 3


def test_oom_kills_without_cgroup_or_file(tmp_path):
    assert sandbox.oom_kills(_launch(tmp_path, 2)) == 0
    launch = _launch(tmp_path, 1)
    launch.memory_cgroup = None
    assert sandbox.oom_kills(launch) == 0


def test_exec_chain_joins_every_cgroup_once(tmp_path):
    launch = _launch(tmp_path / "mem", 1)
    launch.cgroup = str(tmp_path / "pids")
    launch.argv = ["/bin/true"]
    assert launch.cgroup_dirs() == [str(tmp_path / "pids"), str(tmp_path / "mem")]
    chain = spawn._exec_chain(launch)
    if chain is not None:  # prlimit present
        assert chain[:5] == ["/bin/sh", "-c", chain[2], "sh", "2"]
        assert chain[5:7] == [str(tmp_path / "pids" / "cgroup.procs"), str(tmp_path / "mem" / "cgroup.procs")]
    launch.memory_cgroup = launch.cgroup  # cgroup v2: one directory
    assert launch.cgroup_dirs() == [str(tmp_path / "pids")]
