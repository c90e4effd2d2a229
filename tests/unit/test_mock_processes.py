"""What the mock executor shares between processes: the status it derives from the
container id, but not a stop, which only the stopping process remembers."""

import subprocess
import sys
from pathlib import Path

from container_manager.executors.base import LaunchSpec
from container_manager.executors.mock import MockExecutor
from container_manager.models import ExecutorHost

REPO = Path(__file__).resolve().parents[2]

OTHER_PROCESS = """
import sys, django
django.setup()
from container_manager.executors.mock import MockExecutor
from container_manager.models import ExecutorHost
host = ExecutorHost(name="m", executor_type="mock", connection_string="mock://m",
                    executor_config={"run_seconds": 3600})
print(MockExecutor(host).status(sys.argv[1]).state)
"""


def _status_in_another_process(container_id):
    done = subprocess.run([sys.executable, "-c", OTHER_PROCESS, container_id], cwd=REPO,
                          env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": ""},
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_mock_status_is_shared_across_processes_but_a_stop_is_not():
    host = ExecutorHost(name="m", executor_type="mock", connection_string="mock://m",
                        executor_config={"run_seconds": 3600})
    executor = MockExecutor(host)
    cid = executor.launch(LaunchSpec(job_id=1, execution_id=1, image="busybox",
                                     command=[])).container_id
    assert _status_in_another_process(cid) == "running"  # derived from the id
    executor.stop(cid, 0)
    assert executor.status(cid).state == "exited"
    assert _status_in_another_process(cid) == "running"  # the stop stayed in this process
