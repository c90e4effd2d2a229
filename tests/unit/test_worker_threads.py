"""How many threads (and so database connections) a worker uses."""

import threading
import time

import pytest

from container_manager.worker import Worker
from tests.unit.factories import make_host, make_job


def _threads_while_running(concurrency):
    worker = Worker(worker_id=f"t{concurrency}", concurrency=concurrency, poll_interval=0.05)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        time.sleep(0.5)
        names = [t.name for t in threading.enumerate()]
    finally:
        worker.request_stop()
        runner.join(10)
    return (sum(n.startswith(f"cm-worker-t{concurrency}-") for n in names),
            sum(n == f"cm-heartbeat-t{concurrency}" for n in names))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("concurrency,driving", [(1, 0), (3, 3)])
def test_a_worker_has_one_thread_per_job_slot_above_1_plus_its_heartbeat(concurrency, driving):
    """Each thread has its own Django connection: concurrency + 2 in all, 2 with concurrency 1."""
    make_job(make_host(f"threads-{concurrency}", executor_config={"run_seconds": 60}))
    assert _threads_while_running(concurrency) == (driving, 1)
