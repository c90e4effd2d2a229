"""ContainerTaskBackend on the mock executor: enqueue, run in-process, results, signals."""

from __future__ import annotations

import dataclasses
import datetime
import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.tasks import TaskResultStatus, default_task_backend, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.test import override_settings
from django.utils import timezone

from container_manager import claiming, operations
from container_manager.models import ContainerExecution, ContainerJob, ExecutorHost
from container_manager.tasks import ContainerTaskBackend, result_from_job
from container_manager.worker import Worker
from tests.tasks import sample_tasks

# Real commits: enqueue() creates its job when the surrounding transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def host(db):
    return ExecutorHost.objects.create(
        name="tasks-mock", executor_type="mock", connection_string="mock://tasks")


@pytest.fixture
def signals():
    seen = []

    def make(name):
        def receiver(sender, task_result, **kwargs):
            seen.append((name, sender, task_result.id, task_result.status))
        return receiver

    receivers = [(task_enqueued, make("enqueued")), (task_started, make("started")),
                 (task_finished, make("finished"))]
    for signal, receiver in receivers:
        signal.connect(receiver)
    yield seen
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def run_worker(worker_id="w1"):
    return Worker(worker_id=worker_id, concurrency=1).run_once()


def test_backend_declares_what_it_supports():
    backend = task_backends["default"]
    assert isinstance(backend, ContainerTaskBackend)
    assert (backend.supports_defer, backend.supports_priority, backend.supports_get_result,
            backend.supports_async_task) == (True, True, True, True)


def test_enqueue_returns_ready_and_creates_one_marked_job(host):
    result = sample_tasks.add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    assert result.args == [2, 3] and result.kwargs == {}
    assert result.backend == "default" and result.worker_ids == [] and result.errors == []
    job = ContainerJob.objects.tasks().get()
    assert str(job.task_id) == result.id
    assert job.status == "pending" and job.docker_host == host and job.image == "myapp:latest"
    assert job.task["path"] == "tests.tasks.sample_tasks.add"
    assert job.task["args"] == [2, 3]
    assert job.created_at == result.enqueued_at
    command = json.loads(job.command)
    assert command[:4] == ["python", "-m", "django", "run_container_task"]
    assert json.loads(command[4])["path"] == "tests.tasks.sample_tasks.add"
    # An ordinary job is not a task job.
    ContainerJob.objects.create(image="busybox", docker_host=host)
    assert ContainerJob.objects.tasks().count() == 1
    assert ContainerJob.objects.filter(task_id__isnull=True).count() == 1


def test_end_to_end_on_the_mock_returns_the_real_value(host, signals):
    result = sample_tasks.add.enqueue(2, 3)
    stats = run_worker()
    assert (stats.launched, stats.harvested, stats.errors) == (1, 1, 0)
    final = sample_tasks.add.get_result(result.id)
    assert final.status == TaskResultStatus.SUCCESSFUL
    assert final.return_value == 5
    assert final.errors == []
    assert final.worker_ids == ["w1"]
    assert final.enqueued_at <= final.started_at <= final.finished_at
    assert final.last_attempted_at == final.started_at
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 5
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.status == "completed" and job.exit_code == 0
    assert job.containerexecution_set.get().task_result == {"return_value": 5}
    assert [(name, status) for name, _, _, status in signals] == [
        ("enqueued", TaskResultStatus.READY),
        ("started", TaskResultStatus.RUNNING),
        ("finished", TaskResultStatus.SUCCESSFUL),
    ]
    assert {sender for _, sender, _, _ in signals} == {ContainerTaskBackend}
    assert {task_id for _, _, task_id, _ in signals} == {result.id}


def test_a_raising_task_fails_with_its_exception_and_traceback(host, signals):
    result = sample_tasks.fail.enqueue("boom")
    run_worker()
    final = default_task_backend.get_result(result.id)
    assert final.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        final.return_value
    [error] = final.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert error.exception_class is ValueError
    assert "raise ValueError(message)" in error.traceback
    assert error.traceback.rstrip().endswith("ValueError: boom")
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.status_message == "exited with code 1; the task raised builtins.ValueError"
    assert [name for name, *_ in signals] == ["enqueued", "started", "finished"]


def test_a_non_json_return_value_is_a_failure(host):
    result = sample_tasks.returns_object.enqueue()
    run_worker()
    final = default_task_backend.get_result(result.id)
    assert final.status == TaskResultStatus.FAILED
    assert final.errors[0].exception_class_path == "builtins.TypeError"


def test_non_json_arguments_are_refused_at_enqueue(host):
    with pytest.raises(TypeError):
        sample_tasks.add.enqueue(object(), 1)
    assert not ContainerJob.objects.exists()


def test_async_task_and_context_task_and_stdout_prints(host):
    answer = sample_tasks.async_answer.enqueue()
    attempt = sample_tasks.attempt.enqueue()
    prints = sample_tasks.prints_then_returns.enqueue()
    run_worker()
    assert default_task_backend.get_result(answer.id).return_value == 42
    assert default_task_backend.get_result(attempt.id).return_value == {
        "attempt": 1, "id": attempt.id}
    assert default_task_backend.get_result(prints.id).return_value == [1, 2]


def test_async_enqueue_and_get_result(host):
    async def go():
        result = await sample_tasks.add.aenqueue(1, 2)
        return result, await sample_tasks.add.aget_result(result.id)

    result, fetched = async_to_sync(go)()
    assert fetched.id == result.id and fetched.status == TaskResultStatus.READY
    run_worker()
    final = async_to_sync(default_task_backend.aget_result)(result.id)
    assert final.return_value == 3


def test_unknown_ids_raise_task_result_does_not_exist(host):
    for bad in (str(uuid.uuid4()), "not-a-uuid", "", "12"):
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(bad)
    job = ContainerJob.objects.create(image="busybox", docker_host=host)  # ordinary job
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(str(job.pk))


def test_priority_maps_to_the_job_priority_and_orders_claims(host):
    low = sample_tasks.add.using(priority=-5).enqueue(1, 1)
    high = sample_tasks.add.using(priority=50).enqueue(2, 2)
    assert ContainerJob.objects.get(task_id=high.id).priority == 50
    [claimed] = claiming.claim_jobs("w", limit=1)
    assert str(claimed.task_id) == high.id
    assert ContainerJob.objects.get(task_id=low.id).status == "pending"


def test_priority_out_of_range_is_refused_by_validate_task(host):
    with pytest.raises(InvalidTask):
        sample_tasks.add.using(priority=101)


def test_run_after_defers_the_job_until_then(host):
    later = timezone.now() + datetime.timedelta(hours=1)
    result = sample_tasks.add.using(run_after=later).enqueue(1, 2)
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.not_before == later
    assert run_worker().launched == 0
    assert default_task_backend.get_result(result.id).status == TaskResultStatus.READY
    ContainerJob.objects.filter(pk=job.pk).update(not_before=timezone.now())  # the hour passed
    assert run_worker().launched == 1
    final = default_task_backend.get_result(result.id)
    assert final.status == TaskResultStatus.SUCCESSFUL
    assert final.task.run_after == later


def test_queue_options_override_the_defaults(host):
    result = sample_tasks.heavy.enqueue()
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.memory_limit == 1024
    assert default_task_backend.get_result(result.id).task.queue_name == "heavy"
    assert ContainerJob.objects.get(task_id=sample_tasks.add.enqueue(1, 1).id).memory_limit is None


def test_unknown_queue_is_refused(host):
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        sample_tasks.add.using(queue_name="nope")


@pytest.mark.django_db(transaction=True)
def test_enqueue_waits_for_commit_and_a_rollback_enqueues_nothing(host, signals):
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = sample_tasks.add.enqueue(1, 1)
        assert not ContainerJob.objects.exists()  # not before the commit
        raise RuntimeError("roll back")
    assert not ContainerJob.objects.exists()
    assert signals == []
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(rolled_back.id)
    with transaction.atomic():
        committed = sample_tasks.add.enqueue(2, 2)
        assert not ContainerJob.objects.exists()
        assert signals == []
    assert ContainerJob.objects.tasks().get().task_id == uuid.UUID(committed.id)
    assert [name for name, *_ in signals] == ["enqueued"]


def test_cancelled_task_is_failed_with_a_cancel_error(host, signals):
    result = sample_tasks.add.enqueue(1, 1)
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.cancel()
    final = default_task_backend.get_result(result.id)
    assert final.status == TaskResultStatus.FAILED
    [error] = final.errors
    assert error.exception_class_path == "container_manager.task_envelope.TaskCancelled"
    assert "cancelled" in error.traceback
    assert final.finished_at is not None
    assert [name for name, *_ in signals] == ["enqueued", "finished"]


@override_settings(CONTAINER_MANAGER={"RETRY_ON_EXIT_CODES": [1], "RETRY_BACKOFF_SECONDS": 0})
def test_task_jobs_follow_the_retry_policy(host, signals):
    with override_settings(TASKS={"default": {
        "BACKEND": "container_manager.tasks.ContainerTaskBackend",
        "OPTIONS": {"host": "tasks-mock", "image": "myapp:1", "max_retries": 2},
    }}):
        result = sample_tasks.fail.enqueue("again")
        assert ContainerJob.objects.get(task_id=result.id).max_retries == 2
        run_worker("w1")  # no backoff: the pass claims the job again after each failure
        final = default_task_backend.get_result(result.id)
    assert final.status == TaskResultStatus.FAILED
    assert final.worker_ids == ["w1", "w1", "w1"]
    assert final.attempts == 3
    assert [e.exception_class_path for e in final.errors] == ["builtins.ValueError"] * 3
    names = [name for name, *_ in signals]
    assert names == ["enqueued", "started", "started", "started", "finished"]


def test_signals_fire_once_when_one_process_launches_and_another_harvests(host, signals):
    result = sample_tasks.add.enqueue(3, 4)
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.launch()  # by hand: started fires here
    # Two finishers race for the same attempt (two workers, a worker and a web request).
    first = ContainerJob.objects.get(pk=job.pk)
    second = ContainerJob.objects.get(pk=job.pk)  # still 'running' in memory
    assert operations.harvest(first)
    assert operations.harvest(second)  # finds the attempt recorded: moves nothing, sends nothing
    assert [name for name, *_ in signals] == ["enqueued", "started", "finished"]
    final = default_task_backend.get_result(result.id)
    assert final.return_value == 7
    assert final.worker_ids[0].count(":") == 1  # launched by hand: host:pid


def test_a_worker_adopting_a_job_launched_by_hand_sends_finished_once(host, signals):
    result = sample_tasks.add.enqueue(1, 2)
    assert ContainerJob.objects.get(task_id=result.id).launch()
    stats = Worker(worker_id="adopter", concurrency=1).run_once()
    assert stats.adopted == 1
    assert default_task_backend.get_result(result.id).return_value == 3
    assert [name for name, *_ in signals] == ["enqueued", "started", "finished"]


def test_a_receiver_that_raises_does_not_disturb_the_job(host, caplog):
    def broken(**kwargs):
        raise RuntimeError("receiver bug")

    task_finished.connect(broken)
    try:
        result = sample_tasks.add.enqueue(1, 2)
        run_worker()
    finally:
        task_finished.disconnect(broken)
    assert default_task_backend.get_result(result.id).return_value == 3
    assert "receiver bug" in caplog.text or "raised for task" in caplog.text


def _manual_task_job(host, stdout, exit_code=0):
    """A task job whose container (a plain mock) prints ``stdout`` instead of running the task."""
    host.executor_config = {"logs": stdout, "exit_code": exit_code}
    host.save()
    task_id = uuid.uuid4()
    return ContainerJob.objects.create(
        image="busybox", command="echo", docker_host=host, task_id=task_id,
        task={"path": "tests.tasks.sample_tasks.add", "backend": "default", "args": [1, 2],
              "kwargs": {}, "queue_name": "default", "priority": 0},
    )


@pytest.mark.parametrize(
    ("stdout", "reason"),
    [
        ("all good\n", "no task result envelope on stdout"),
        ('container_manager.task_result: {"id": "x", "return_value": 1\n',
         "not valid JSON"),
        ('container_manager.task_result: {"id": "someone-else", "return_value": 1}\n',
         "is for task 'someone-else'"),
        ('container_manager.task_result: {"id": "ID", "value": 1}\n', "must hold either"),
        ("[container_manager: 99 bytes truncated]\n...", "cut at LOG_MAX_BYTES"),
    ],
)
def test_unparsable_output_is_a_failure_with_a_clear_reason(host, stdout, reason):
    job = _manual_task_job(host, stdout)
    job.command = "echo"
    stdout = stdout.replace('"ID"', json.dumps(str(job.task_id)))
    host.executor_config = {"logs": stdout}
    host.save()
    job.refresh_from_db()
    assert job.launch() and job.harvest()
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.status_message.startswith("task result unreadable: ")
    assert reason in job.status_message
    final = default_task_backend.get_result(str(job.task_id))
    assert final.status == TaskResultStatus.FAILED
    assert final.errors[0].exception_class_path == (
        "container_manager.task_envelope.TaskResultUnreadable")


def test_nonzero_exit_without_envelope_keeps_the_exit_code_and_says_why(host):
    job = _manual_task_job(host, "python: not found\n", exit_code=127)
    assert job.launch() and job.harvest()
    job.refresh_from_db()
    assert job.status_message.startswith("exited with code 127; no task result envelope")


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        ("failed", "timed out after 5 s", "TaskTimedOut"),
        ("failed", "out of memory (killed at the memory limit)", "TaskOutOfMemory"),
        ("failed", "launch failed: image not found", "TaskLaunchFailed"),
        ("failed", "container disappeared before its result was read (gone)",
         "TaskContainerError"),
        ("cancelled", "cancelled", "TaskCancelled"),
    ],
)
def test_failures_without_an_exception_map_to_container_errors(host, status, message, expected):
    job = _manual_task_job(host, "")
    ContainerJob.objects.filter(pk=job.pk).update(status=status, status_message=message,
                                                  attempts=1, finished_at=timezone.now())
    ContainerExecution.objects.create(job=job, attempt=1, status=status, error_message=message,
                                      worker_id="w9", started_at=timezone.now())
    job.refresh_from_db()
    final = result_from_job(job)
    assert final.status == TaskResultStatus.FAILED
    [error] = final.errors
    assert error.exception_class_path == f"container_manager.task_envelope.{expected}"
    assert message in error.traceback
    assert final.worker_ids == ["w9"]


def test_status_mapping_for_unfinished_jobs(host):
    result = sample_tasks.add.enqueue(1, 1)
    job = ContainerJob.objects.get(task_id=result.id)
    assert result_from_job(job).status == TaskResultStatus.READY
    ContainerJob.objects.filter(pk=job.pk).update(status="starting")
    job.refresh_from_db()
    assert result_from_job(job).status == TaskResultStatus.READY
    ContainerJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now())
    job.refresh_from_db()
    running = result_from_job(job)
    assert running.status == TaskResultStatus.RUNNING
    assert running.started_at == job.started_at and running.finished_at is None
    with pytest.raises(ValueError, match="not finished"):
        running.return_value


def test_task_jobs_are_ordinary_jobs_in_the_admin(host, admin_client):
    result = sample_tasks.add.enqueue(1, 1)
    job = ContainerJob.objects.get(task_id=result.id)
    page = admin_client.get("/admin/container_manager/containerjob/")
    assert page.status_code == 200
    assert f"job {job.pk}: myapp:latest" in page.content.decode() or "task tests.tasks" in (
        page.content.decode())
    detail = admin_client.get(f"/admin/container_manager/containerjob/{job.pk}/change/")
    assert detail.status_code == 200


@pytest.fixture
def sent_and_read():
    """What task_started/task_finished sent, beside what get_result() reads at that moment."""
    seen = []

    def make(name):
        def receiver(sender, task_result, **kwargs):
            seen.append((name, task_result, default_task_backend.get_result(task_result.id)))
        return receiver

    receivers = [(task_started, make("started")), (task_finished, make("finished"))]
    for signal, receiver in receivers:
        signal.connect(receiver)
    yield seen
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def _as_started(read):
    """What get_result() read, as the attempt's launch alone records it.

    A worker records a container that ended within its executor's
    record_launch_after with its result, in one write: get_result() then already
    reads the result, and task_started describes the start (running, no result, the
    errors of the earlier attempts only, each of which failed).
    """
    started = dataclasses.replace(read, status=TaskResultStatus.RUNNING, finished_at=None,
                                  errors=read.errors[:len(read.worker_ids) - 1])
    object.__setattr__(started, "_return_value", None)
    return started


def _assert_sent_as_read(seen, names):
    assert [name for name, *_ in seen] == names
    for name, sent, read in seen:
        if name == "started" and read.status != TaskResultStatus.RUNNING:
            read = _as_started(read)  # recorded with its result, see _as_started
        assert sent == read, name  # every field, the return value and the errors included


def test_signal_results_are_what_get_result_reads_for_a_value(host, sent_and_read):
    sample_tasks.add.enqueue(2, 3)
    run_worker("w7")
    _assert_sent_as_read(sent_and_read, ["started", "finished"])
    _, started, _ = sent_and_read[0]
    assert started.status == TaskResultStatus.RUNNING and started.worker_ids == ["w7"]
    assert started.started_at is not None
    _, finished, _ = sent_and_read[1]
    assert finished.return_value == 5 and finished.finished_at is not None


def test_signal_results_are_what_get_result_reads_for_an_exception(host, sent_and_read):
    sample_tasks.fail.enqueue("boom")
    run_worker()
    _assert_sent_as_read(sent_and_read, ["started", "finished"])
    [error] = sent_and_read[1][1].errors
    assert error.exception_class_path == "builtins.ValueError"


@override_settings(CONTAINER_MANAGER={"RETRY_ON_EXIT_CODES": [1], "RETRY_BACKOFF_SECONDS": 0})
def test_signal_results_are_what_get_result_reads_across_retries(host, sent_and_read):
    with override_settings(TASKS={"default": {
        "BACKEND": "container_manager.tasks.ContainerTaskBackend",
        "OPTIONS": {"host": "tasks-mock", "image": "myapp:1", "max_retries": 1},
    }}):
        sample_tasks.fail.enqueue("again")
        run_worker("w1")
    _assert_sent_as_read(sent_and_read, ["started", "started", "finished"])
    assert [len(sent.errors) for _, sent, _ in sent_and_read] == [0, 1, 2]
    assert sent_and_read[2][1].worker_ids == ["w1", "w1"]


def test_signal_results_are_what_get_result_reads_when_launched_by_hand(host, sent_and_read):
    result = sample_tasks.add.enqueue(3, 4)
    job = ContainerJob.objects.get(task_id=result.id)
    assert job.launch() and job.harvest()
    _assert_sent_as_read(sent_and_read, ["started", "finished"])
    assert sent_and_read[1][1].return_value == 7


def test_a_task_job_is_driven_with_as_many_statements_as_a_plain_job(host):
    """task_started and task_finished read nothing: the mover passes the attempt it holds."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    worker = Worker(worker_id="wq", concurrency=1)
    result = sample_tasks.add.enqueue(1, 2)
    command = ContainerJob.objects.get(task_id=result.id).command
    ContainerJob.objects.create(image="myapp:latest", command=command, docker_host=host,
                                priority=-1)  # the same container, claimed second
    counts = []
    for _ in range(2):
        [job] = claiming.claim_jobs("wq", 1)
        with CaptureQueriesContext(connection) as queries:
            worker.drive(job, fresh=True)
        assert job.status == "completed", job.status_message
        counts.append((job.task_id is not None, len(queries)))
    assert counts[0][0] and not counts[1][0]
    assert counts[0][1] == counts[1][1]


def test_get_result_reads_a_finished_task_in_one_statement(host):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    result = sample_tasks.add.enqueue(1, 2)
    with CaptureQueriesContext(connection) as queries:
        assert default_task_backend.get_result(result.id).status == TaskResultStatus.READY
    assert len(queries) == 2  # no attempt yet: the attempts (none), then the job
    run_worker()
    with CaptureQueriesContext(connection) as queries:
        assert default_task_backend.get_result(result.id).return_value == 3
    assert len(queries) == 1
