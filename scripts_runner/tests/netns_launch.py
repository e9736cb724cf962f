"""Start one sandboxed run exactly as the worker does (sandbox.prepare + sandbox.start), in this process.

Used by the network-isolation tests where the run must happen somewhere the test
process is not: inside a "worker host" network namespace the test made
(`ip netns exec … python netns_launch.py`), or in a process the test kills.

    python netns_launch.py RUN_DIR NETWORK(0|1) SCRIPT [ARG…]
        runs SCRIPT, prints {"returncode", "stdout", "stderr"} as JSON
    python netns_launch.py --hold RUN_DIR 1 SCRIPT
        starts SCRIPT, prints {"pids": [...], "netns": inode} once the script printed
        its first line, then waits until it is killed (the worker-death test)
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from scripts_runner import sandbox  # noqa: E402


def main() -> None:
    args = sys.argv[1:]
    hold = args[0] == "--hold"
    if hold:
        args = args[1:]
    run_dir, network, script, script_args = Path(args[0]), args[1] == "1", Path(args[2]), args[3:]
    launch = sandbox.prepare(run_dir=run_dir, script_name=script.name, code=script.read_bytes(), args=script_args,
                             env={}, network=network, sandboxed=True)
    proc = sandbox.start(launch)
    try:
        if hold:
            first = proc.stdout.readline()
            pids = [proc.pid, *sandbox.descendants(proc.pid)]
            if launch.run_network is not None:
                pids += launch.run_network.pids()
            netns = os.stat(launch.run_network.netns_path).st_ino if launch.run_network else 0
            print(json.dumps({"first": first.decode(), "pids": pids, "netns": netns}), flush=True)
            while True:
                time.sleep(60)
        stdout, stderr = proc.communicate(timeout=120)
        print(json.dumps({"returncode": proc.returncode, "stdout": stdout.decode(errors="replace"),
                          "stderr": stderr.decode(errors="replace")}))
    finally:
        sandbox.cgroups_remove(launch)
        sandbox.network_stop(launch)


if __name__ == "__main__":
    main()
