"""The retry policy on its own: RetryStrategy decides, nothing is read or written."""

import datetime

import pytest
from django.test import override_settings

from container_manager.executors.errors import (
    ExecutorConfigurationError,
    ExecutorError,
    ExecutorNotAvailableError,
    HostUnavailableError,
    ImageNotFoundError,
    LaunchError,
)
from container_manager.retry import Outcome, RetryDecision, RetryStrategy

SECOND = datetime.timedelta(seconds=1)


def test_exit_codes_are_retried_only_when_listed():
    policy = RetryStrategy(retry_exit_codes=frozenset({75, 2}))
    assert policy.is_retryable(Outcome(exit_code=75))
    assert policy.is_retryable(Outcome(exit_code=2))
    assert not policy.is_retryable(Outcome(exit_code=1))
    assert not policy.is_retryable(Outcome(exit_code=0))  # success is never retried
    assert not RetryStrategy(retry_exit_codes=frozenset({0})).is_retryable(Outcome(exit_code=0))


def test_out_of_memory_follows_retry_on_oom_whatever_the_exit_code():
    oom = Outcome(exit_code=137, oom_killed=True)
    assert not RetryStrategy(retry_exit_codes=frozenset({137})).is_retryable(oom)
    assert RetryStrategy(retry_on_oom=True).is_retryable(oom)


def test_attempts_without_an_exit_code_are_not_retried():
    policy = RetryStrategy(retry_exit_codes=frozenset({1}), retry_on_oom=True)
    assert not policy.is_retryable(Outcome())  # timed out, vanished, cancelled


@pytest.mark.parametrize("error", [ImageNotFoundError, ExecutorNotAvailableError,
                                   ExecutorConfigurationError])
def test_permanent_launch_errors_are_never_retried(error):
    decision = RetryStrategy().decide(Outcome(launch_error=error("x")), attempts=1, max_retries=5)
    assert decision == RetryDecision(retry=False)


@pytest.mark.parametrize("error", [LaunchError, ExecutorError, HostUnavailableError])
def test_other_launch_errors_are_retried_within_max_retries(error):
    policy = RetryStrategy(backoff_seconds=1)
    outcome = Outcome(launch_error=error("x"))
    assert policy.decide(outcome, attempts=2, max_retries=2) == RetryDecision(True, 2 * SECOND)
    assert policy.decide(outcome, attempts=1, max_retries=0).retry is (error is HostUnavailableError)


def test_an_unreachable_host_gets_one_attempt_more_than_max_retries():
    policy = RetryStrategy()
    outcome = Outcome(launch_error=HostUnavailableError("refused"))
    assert [policy.decide(outcome, attempts=n, max_retries=1).retry for n in (1, 2, 3)] == [
        True, True, False]
    other = Outcome(launch_error=LaunchError("quota"))
    assert [policy.decide(other, attempts=n, max_retries=1).retry for n in (1, 2, 3)] == [
        True, False, False]


def test_backoff_doubles_per_attempt_up_to_the_cap():
    policy = RetryStrategy(backoff_seconds=5, backoff_max_seconds=60)
    assert [policy.backoff(n) / SECOND for n in range(0, 7)] == [5, 5, 10, 20, 40, 60, 60]
    assert RetryStrategy(backoff_seconds=0).backoff(10) == datetime.timedelta(0)


def test_a_decision_not_to_retry_has_no_delay():
    policy = RetryStrategy(retry_exit_codes=frozenset({3}), backoff_seconds=30)
    assert policy.decide(Outcome(exit_code=3), attempts=4, max_retries=3) == RetryDecision(False)
    assert policy.decide(Outcome(exit_code=3), attempts=3, max_retries=3).delay == 120 * SECOND


def test_from_settings_reads_container_manager():
    with override_settings(CONTAINER_MANAGER={
        "RETRY_ON_EXIT_CODES": [1, 75], "RETRY_ON_OOM": True,
        "RETRY_BACKOFF_SECONDS": 2, "RETRY_BACKOFF_MAX_SECONDS": 7,
    }):
        policy = RetryStrategy.from_settings()
    assert policy == RetryStrategy(retry_exit_codes=frozenset({1, 75}), retry_on_oom=True,
                                   backoff_seconds=2, backoff_max_seconds=7)
    assert policy.backoff(5) == 7 * SECOND
