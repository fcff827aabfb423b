"""Kata `celery_reliability`: retries with backoff, tasks that survive a dead worker, idempotent
tasks, revoking, and time limits."""

from __future__ import annotations

import datetime
import itertools
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import celery.exceptions
import pytest
import redis
from celery.result import AsyncResult
from celery.signals import before_task_publish
from celery_reliability import (
    BACKOFF,
    MAX_RETRIES,
    SOFT_TIME_LIMIT,
    TIME_LIMIT,
    VISIBILITY_TIMEOUT,
    app,
    cancel,
    convert,
    deposit,
    fetch,
    settings,
    stubborn,
    submit_limited,
)

from plugins.celery_workers import Worker, check_app

# Every wait below is bounded: a task that never comes back fails its test within this many
# seconds, naming the task, its state and its queue (the get_result fixture).
WAIT = 5.0
# A worker notices that one of its pool processes died when it next checks its pool: Celery
# 5.7 does so every 5 s (measured here: a killed pool process is reported 0.1 to 5 s later).
POOL_CHECK = 5.0
# A record's time and the worker's clock agree to the microsecond (one machine); this allows
# for the two clocks' rounding only.
CLOCK_SLACK = 0.01
# convert's items in the soft-limit test: 30 steps of 0.05 s, 1.5 s of work, far past both limits
CONVERT_ITEMS = 30


@pytest.fixture(scope="module")
def queue(kata_namespace: Any) -> str:
    """The queue this module's worker consumes (a name no other run uses)."""
    return str(kata_namespace.name("reliable"))


@dataclass
class HeadStart:
    """A slow scenario sent as soon as the module's worker is up: its waits (backoffs, time
    limits) then run beside the other tests instead of one after another."""

    key: str  # the name its records in Redis are made from
    sent: datetime.datetime
    result: AsyncResult | None = None
    error: BaseException | None = None  # raised in this process when it was sent
    ready_when_sent: bool = False  # whether the result was there as soon as the send returned
    # The time limits its message carried, [time_limit, soft_time_limit] (Celery's "timelimit"
    # header), as the test process sent it.
    time_limits: list[Any] | None = None
    worker: Worker | None = None  # the worker killed mid-task, in the scenario that has one
    first: dict[str, Any] | None = None  # that task's first run, from its record

    def sent_result(self) -> AsyncResult:
        """Its AsyncResult; what sending it raised is raised again, in the test that reads it."""
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@pytest.fixture(scope="module")
def head_starts() -> dict[str, HeadStart]:
    """The slow scenarios, by name, once the `worker` fixture has sent them."""
    return {}


def head_start(kata_namespace: Any, send: Callable[[str], AsyncResult]) -> HeadStart:
    key = str(kata_namespace.name("key"))
    started = HeadStart(key, now())
    limits: list[Any] = []

    def record(headers: Any = None, **_: Any) -> None:
        limits.append((headers or {}).get("timelimit"))

    before_task_publish.connect(record, weak=False, dispatch_uid=f"head-start-{key}")
    try:
        started.result = send(key)
        started.ready_when_sent = bool(started.result.ready())
    except Exception as error:  # the learner's submit_limited: its own test reports it
        started.error = error
    finally:
        before_task_publish.disconnect(dispatch_uid=f"head-start-{key}")
    started.time_limits = list(limits[0] or []) if limits else None
    return started


def assert_sent_with_both_limits(started: HeadStart, task: str) -> None:
    """The message itself carries the two limits: whether the hard one also fires first (they
    are swapped) is a race on a loaded machine, the message is not."""
    __tracebackhide__ = True
    wanted = [TIME_LIMIT, SOFT_TIME_LIMIT]
    assert started.time_limits == wanted, (
        f"submit_limited sent {task} with [time_limit, soft_time_limit] = "
        f"{started.time_limits}, not {wanted}: pass soft_time_limit=SOFT_TIME_LIMIT and "
        "time_limit=TIME_LIMIT to apply_async (the soft limit lets the task clean up, the "
        "hard one, later, kills a task that does not stop)"
    )


def deposit_on_a_dying_worker(doomed: Worker, key: str, url: str) -> HeadStart:
    """Send a deposit to `doomed` alone and kill that worker while the deposit waits in
    notify() (at most WAIT seconds for it to get there)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    started = HeadStart(key, now(), worker=doomed)
    try:
        client.set(f"{key}:hold", 1)  # notify() waits while this key exists
        result = started.result = deposit.apply_async((key, "p-7", 25), queue=doomed.queues[0])
        deadline = time.monotonic() + WAIT
        while not (runs := records(client, f"{key}:runs")) and time.monotonic() < deadline:
            if result.ready():  # it failed before it got there
                break
            time.sleep(0.01)
        started.first = runs[0] if runs else None
    except Exception as error:
        started.error = error
    finally:
        doomed.stop()  # SIGKILL to the whole worker: nothing is left to report or give back
        client.delete(f"{key}:hold")
        client.close()
    return started


@pytest.fixture(scope="module")
def worker(
    celery_workers: Callable[..., list[Worker]],
    queue: str,
    kata_namespace: Any,
    broker: Any,
    head_starts: dict[str, HeadStart],
) -> Worker:
    # 3 processes, not Celery's default of one per core (2 here); beside it, started at the
    # same time, the worker that test_a_deposit_whose_worker_dies_... kills mid-task.
    started, doomed = celery_workers(
        "celery_reliability",
        [
            {"queues": [queue], "concurrency": 3, "app": app},
            # One pool process: it is killed with its worker, whatever their number.
            {
                "queues": [kata_namespace.name("doomed")],
                "concurrency": 1,
                "app": app,
                "name": "doomed",
            },
        ],
    )
    scenarios: dict[str, Callable[[str], AsyncResult]] = {
        # The service answers at the last retry: 0.75 s of backoff in all.
        "backoff": lambda key: fetch.apply_async((key, MAX_RETRIES), queue=queue),
        # A service that never answers: every retry, then the end.
        "give-up": lambda key: fetch.apply_async((key, 1000), queue=queue),
        "soft-limit": lambda key: submit_limited(convert, [key, CONVERT_ITEMS], queue),
        "hard-limit": lambda key: submit_limited(stubborn, [key], queue),
    }
    for name, send in scenarios.items():
        head_starts[name] = head_start(kata_namespace, send)
    head_starts["worker-dies"] = deposit_on_a_dying_worker(
        doomed, str(kata_namespace.name("key")), broker.url
    )
    return started


@pytest.fixture
def key(kata_namespace: Any) -> str:
    """A name for this test's records in Redis (the tasks make their keys from it)."""
    return str(kata_namespace.name("key"))


@pytest.fixture
def store(broker: Any) -> Iterator[redis.Redis]:
    """The test's own client of this run's Redis, to read what the tasks recorded."""
    client = redis.Redis.from_url(broker.url, decode_responses=True)
    yield client
    client.close()


def records(store: redis.Redis, name: str) -> list[dict[str, Any]]:
    """The JSON records in the Redis list `name`, oldest first."""
    return [json.loads(item) for item in store.lrange(name, 0, -1)]


def wait_until(condition: Callable[[], Any], timeout: float, failure: str) -> Any:
    """condition()'s first true value, checked every 10 ms; the test fails with `failure` when
    there is none within `timeout` seconds."""
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(failure, pytrace=False)
        time.sleep(0.01)


def outcome(get_result: Callable[..., Any], result: AsyncResult, why: Callable[[], str]) -> Any:
    """get_result(result, WAIT), with why() in front of the failure when the result never
    comes."""
    __tracebackhide__ = True
    try:
        return get_result(result, WAIT)
    except pytest.fail.Exception as lost:
        pytest.fail(f"{why()}\n({lost})", pytrace=False)


def seconds_after(result: AsyncResult, sent: datetime.datetime) -> float:
    """How long after `sent` the worker stored the result of `result`."""
    done = result.date_done
    assert done is not None, f"the result of {result.id} has no date_done"
    if done.tzinfo is None:
        done = done.replace(tzinfo=datetime.UTC)
    return (done - sent).total_seconds()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def why_fetch_is_late(result: AsyncResult, store: redis.Redis, key: str) -> Callable[[], str]:
    """Why a fetch whose service answers in the end has no result yet."""

    def why() -> str:
        attempts = store.llen(f"{key}:attempts")
        if result.state == "RETRY":
            return (
                f"fetch made {attempts} attempts and waits for its next retry: is it due "
                "BACKOFF * 2 ** self.request.retries seconds later? (self.retry with no "
                "countdown waits the task's default_retry_delay, 3 minutes)"
            )
        return f"fetch made {attempts} attempts and ended {result.state}"

    return why


def why_no_second_run(*, pool_process_only: bool) -> str:
    """What in the learner's settings kept a task from running again after its worker died."""
    conf = app.conf
    if not conf.task_acks_late:
        return (
            "task_acks_late is off, so the worker acknowledged the message when the task "
            "started: the broker forgot the task then, and nobody could run it again"
        )
    if pool_process_only and not conf.task_reject_on_worker_lost:
        return (
            "task_reject_on_worker_lost is off, so when the pool process died the worker "
            "acknowledged the message and marked the task FAILURE (WorkerLostError) instead of "
            "putting it back in the queue"
        )
    visibility = (conf.broker_transport_options or {}).get("visibility_timeout")
    if not pool_process_only and visibility != VISIBILITY_TIMEOUT:
        return (
            f"broker_transport_options has visibility_timeout {visibility!r} (Redis's default "
            "is an hour): Redis has no acknowledgements of its own, so a message that a dead "
            "worker took is delivered again only after that long"
        )
    return "the task did not run again after its worker died"


# -- the app's settings ----------------------------------------------------------------------


@pytest.mark.clause(1)
def test_settings_read_the_broker_url_when_called_and_allow_json_only(
    monkeypatch: pytest.MonkeyPatch, broker: Any
) -> None:
    elsewhere = "redis://:another-password@127.0.0.1:6399/3"
    monkeypatch.setenv("KATA_BROKER_URL", elsewhere)
    got = settings()
    for name in ("broker_url", "result_backend"):
        assert got.get(name) == elsewhere, (
            f"with KATA_BROKER_URL={elsewhere!r}, settings() gave {name} {got.get(name)!r}: "
            "read os.environ['KATA_BROKER_URL'] inside settings(), for the broker and the "
            "result backend alike"
        )
    monkeypatch.setenv("KATA_BROKER_URL", broker.url)
    check_app(app, broker)


@pytest.mark.clause(2)
def test_settings_acknowledge_a_task_only_once_it_has_finished() -> None:
    assert settings().get("task_acks_late") is True, (
        f"settings()['task_acks_late'] is {settings().get('task_acks_late')!r}, not True: by "
        "default a worker acknowledges a message as soon as the task starts, so a worker that "
        "dies mid-task loses it; acks_late acknowledges once the task has finished"
    )


@pytest.mark.clause(3)
def test_settings_give_back_the_task_of_a_pool_process_that_died() -> None:
    got = settings().get("task_reject_on_worker_lost")
    assert got is True, (
        f"settings()['task_reject_on_worker_lost'] is {got!r}, not True: with acks_late "
        "alone, a worker whose pool process dies mid-task still acknowledges the message and "
        "marks the task FAILURE (WorkerLostError); reject_on_worker_lost puts it back in the "
        "queue instead"
    )


@pytest.mark.clause(4)
def test_settings_make_redis_redeliver_an_unacknowledged_task_after_a_second() -> None:
    options = settings().get("broker_transport_options") or {}
    got = options.get("visibility_timeout")
    assert got == VISIBILITY_TIMEOUT, (
        f"settings()['broker_transport_options'] is {options!r}: its visibility_timeout is "
        f"{got!r}, not {VISIBILITY_TIMEOUT}. Redis has no acknowledgements: kombu keeps each "
        "delivered message aside until it is acknowledged, and hands it out again only after "
        "visibility_timeout seconds (an hour by default), so a dead worker's task would wait "
        "an hour"
    )


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.clause(5)
def test_fetch_retries_a_connection_error_until_the_service_answers(
    worker: Worker, queue: str, key: str, store: redis.Redis, get_result: Callable[..., Any]
) -> None:
    assert fetch.name == "celery_reliability.fetch", f"fetch is registered as {fetch.name!r}"
    result = fetch.apply_async((key, 2), queue=queue)
    value = outcome(get_result, result, why_fetch_is_late(result, store, key))
    attempts = records(store, f"{key}:attempts")
    assert value == 3 and len(attempts) == 3, (
        f"the service failed twice with ConnectionError, then answered; fetch returned "
        f"{value!r} after {len(attempts)} attempts, not 3 after 3: catch ConnectionError and "
        "raise self.retry(exc=..., countdown=..., max_retries=MAX_RETRIES)"
    )
    assert [a["retries"] for a in attempts] == [0, 1, 2], (
        f"the attempts ran with self.request.retries {[a['retries'] for a in attempts]}, not "
        "[0, 1, 2]: retry the same task with self.retry, do not send a new one"
    )


@pytest.mark.clause(6, 7)
def test_fetch_backs_off_exponentially_and_may_succeed_at_its_last_retry(
    worker: Worker,
    head_starts: dict[str, HeadStart],
    store: redis.Redis,
    get_result: Callable[..., Any],
) -> None:
    # fetch(key, MAX_RETRIES), sent when the worker started
    key, result = head_starts["backoff"].key, head_starts["backoff"].sent_result()
    try:
        value = outcome(get_result, result, why_fetch_is_late(result, store, key))
    except ConnectionError as error:
        pytest.fail(
            f"the service failed {MAX_RETRIES} times and would have answered the next "
            f"attempt, but fetch gave up with {error!r}: MAX_RETRIES = {MAX_RETRIES} retries "
            f"means {MAX_RETRIES + 1} attempts (pass max_retries=MAX_RETRIES)",
            pytrace=False,
        )
    assert value == MAX_RETRIES + 1, f"fetch returned {value!r}, not {MAX_RETRIES + 1}"
    attempts = records(store, f"{key}:attempts")
    for n, retry in enumerate(attempts[1:], start=1):
        assert retry["eta"], (
            f"retry {n} of fetch was not scheduled at all (it had no eta): give self.retry a "
            f"countdown, here BACKOFF * 2 ** {n - 1} = {BACKOFF * 2 ** (n - 1):g} s"
        )
    # Each wait runs from the failed attempt's record to the retry's due time (its eta), both
    # on the worker's clock: only the few statements between the two add to it.
    waits = [
        datetime.datetime.fromisoformat(retry["eta"]).timestamp() - failed["at"]
        for failed, retry in itertools.pairwise(attempts)
    ]
    for n, due in enumerate(waits, start=1):
        wanted = BACKOFF * 2 ** (n - 1)
        assert wanted - CLOCK_SLACK <= due <= wanted + 0.35, (
            f"retry {n} was due {due:.3f} s after attempt {n} failed, not BACKOFF * 2 ** "
            f"{n - 1} = {wanted:g} s; the waits were {', '.join(f'{w:.3f}' for w in waits)} s. "
            "Exponential backoff doubles the wait at each retry: countdown = BACKOFF * 2 ** "
            "self.request.retries (0 on the first attempt)"
        )


@pytest.mark.clause(7)
def test_fetch_gives_up_after_max_retries_with_the_last_connection_error(
    worker: Worker,
    head_starts: dict[str, HeadStart],
    store: redis.Redis,
    get_result: Callable[..., Any],
) -> None:
    # fetch(key, 1000), sent when the worker started
    key, result = head_starts["give-up"].key, head_starts["give-up"].sent_result()
    limit = MAX_RETRIES + 1
    total_backoff = sum(BACKOFF * 2**n for n in range(MAX_RETRIES))
    wait_until(
        lambda: result.ready() or store.llen(f"{key}:attempts") > limit,
        WAIT + total_backoff,
        f"fetch of a service that always fails was neither done nor past {limit} attempts "
        f"after {WAIT + total_backoff:g} s",
    )
    attempts = store.llen(f"{key}:attempts")
    assert attempts == limit, (
        f"fetch of a service that always fails made {attempts} attempts, not {limit}: "
        + (
            "it goes on retrying for ever; pass max_retries=MAX_RETRIES to self.retry"
            if attempts > limit
            else f"MAX_RETRIES = {MAX_RETRIES} retries come after the first attempt"
        )
    )
    try:
        value = get_result(result, WAIT)
    except ConnectionError:
        pass
    except celery.exceptions.MaxRetriesExceededError as error:
        pytest.fail(
            f"fetch failed with MaxRetriesExceededError ({error}), not with the service's "
            "ConnectionError: pass exc=the caught exception to self.retry, so that the caller "
            "learns what went wrong",
            pytrace=False,
        )
    else:
        pytest.fail(f"fetch of a service that always fails returned {value!r}", pytrace=False)


@pytest.mark.clause(8)
def test_fetch_does_not_retry_a_value_error(
    worker: Worker, queue: str, key: str, store: redis.Redis, get_result: Callable[..., Any]
) -> None:
    result = fetch.apply_async((key, 3, "ValueError"), queue=queue)
    get_result(result, WAIT, propagate=False)
    attempts = store.llen(f"{key}:attempts")
    assert attempts == 1, (
        f"fetch made {attempts} attempts at a request the service refused with ValueError: "
        "retry only ConnectionError; a bad request or a bug fails the same way every time, "
        "and retrying it only hides it for longer"
    )
    with pytest.raises(ValueError, match=key):
        get_result(result, WAIT)


# -- idempotence and late acknowledgement ----------------------------------------------------


@pytest.mark.clause(9)
def test_deposit_counts_each_payment_once_however_often_it_runs(
    worker: Worker, queue: str, key: str, store: redis.Redis, get_result: Callable[..., Any]
) -> None:
    assert deposit.name == "celery_reliability.deposit", f"deposit is {deposit.name!r}"
    account, other = f"{key}-a", f"{key}-b"
    steps = [
        ((account, "p-1", 5), 5, "the first payment"),
        ((account, "p-1", 5), 5, "payment p-1 again (a redelivered message)"),
        ((account, "p-2", 5), 10, "a second payment of the same amount"),
        ((other, "p-1", 7), 7, "payment p-1 of another account"),
    ]
    for args, wanted, what in steps:
        got = get_result(deposit.apply_async(args, queue=queue), WAIT)
        assert got == wanted, (
            f"deposit{args} ({what}) returned the balance {got!r}, not {wanted}: record each "
            "payment under its payment_id with HSETNX, which does nothing when the id is "
            "already there, and add up the hash's amounts"
        )
    payments = store.hgetall(f"{account}:payments")
    assert payments == {"p-1": "5", "p-2": "5"}, (
        f"the hash {account}:payments holds {payments}, not {{'p-1': '5', 'p-2': '5'}}"
    )


@pytest.mark.clause(2, 3, 9)
@pytest.mark.budget(30)  # up to 5 s for the worker to notice, more on a loaded machine
def test_a_deposit_whose_pool_process_dies_runs_again_and_counts_once(
    worker: Worker, queue: str, key: str, store: redis.Redis, get_result: Callable[..., Any]
) -> None:
    store.set(f"{key}:hold", 1)  # notify() waits while this key exists
    result = deposit.apply_async((key, "p-9", 40), queue=queue)
    first = wait_until(
        lambda: records(store, f"{key}:runs"),
        WAIT,
        "deposit never reached notify(): it must record the payment, then call notify()",
    )[0]
    assert first["pid"] in worker.pool_pids(), f"run {first} is not in the worker's pool"
    os.kill(first["pid"], signal.SIGKILL)  # the pool process dies in the middle of the task
    store.delete(f"{key}:hold")
    try:
        value = get_result(result, POOL_CHECK + WAIT)
    except celery.exceptions.WorkerLostError:
        pytest.fail(
            "the deposit whose pool process was killed mid-task ended FAILURE "
            f"(WorkerLostError) instead of running again: {why_no_second_run(pool_process_only=True)}",
            pytrace=False,
        )
    runs = records(store, f"{key}:runs")
    assert len(runs) == 2 and runs[1]["pid"] != first["pid"], (
        f"the deposit ran {len(runs)} times, in processes {[r['pid'] for r in runs]}: it "
        "should have run once more, in a new pool process, after the first was killed"
    )
    assert value == 40 and store.hgetall(f"{key}:payments") == {"p-9": "40"}, (
        f"after running twice, the deposit of 40 as payment p-9 left the balance {value!r} and "
        f"the payments {store.hgetall(f'{key}:payments')}, not 40 and {{'p-9': '40'}}: a task "
        "that may run again must be idempotent; record the amount under its payment_id once "
        "(HSETNX) and add up the hash"
    )


@pytest.mark.clause(2, 4, 9)
@pytest.mark.budget(60)  # a worker start may take 20 s before the plugin gives up
def test_a_deposit_whose_worker_dies_is_run_by_a_worker_started_after(
    worker: Worker,
    head_starts: dict[str, HeadStart],
    celery_worker: Callable[..., Worker],
    store: redis.Redis,
    get_result: Callable[..., Any],
) -> None:
    # deposit(key, "p-7", 25) sent to a worker of its own, killed while the deposit was in
    # notify(): both done when the module's worker started
    started = head_starts["worker-dies"]
    key, result, doomed, first = started.key, started.sent_result(), started.worker, started.first
    assert doomed is not None
    if first is None:
        pytest.fail(
            "deposit never reached notify(): it must record the payment, then call notify()",
            pytrace=False,
        )
    # Redis hands the message out again once it has been unacknowledged for the visibility
    # timeout, and a worker looks for such messages when it starts: so the next worker starts
    # only after that (the first run began after the delivery, so this is later still).
    time.sleep(max(0.0, first["at"] + VISIBILITY_TIMEOUT + CLOCK_SLACK - time.time()))
    second = celery_worker(
        "celery_reliability", queues=list(doomed.queues), concurrency=1, app=app, name="second"
    )
    try:
        value = outcome(
            get_result,
            result,
            lambda: (
                "the deposit whose worker was killed mid-task never ran again on the "
                f"worker started {VISIBILITY_TIMEOUT} s later: "
                + why_no_second_run(pool_process_only=False)
            ),
        )
    finally:
        # Stopped now, not at the end of the module: a worker that does not run a task sees it
        # PENDING, so it would mark a task revoked in a later test REVOKED while it runs.
        second.stop()
    runs = records(store, f"{key}:runs")
    assert [r["worker"] for r in runs] == [doomed.hostname, second.hostname], (
        f"the deposit ran on {[r['worker'] for r in runs]}, not once on {doomed.hostname} "
        f"(killed) and once on {second.hostname}"
    )
    assert value == 25 and store.hgetall(f"{key}:payments") == {"p-7": "25"}, (
        f"after running twice, the deposit of 25 as payment p-7 left the balance {value!r} and "
        f"the payments {store.hgetall(f'{key}:payments')}, not 25 and {{'p-7': '25'}}: a task "
        "that may run again must be idempotent; record the amount under its payment_id once "
        "(HSETNX) and add up the hash"
    )


# -- revoking --------------------------------------------------------------------------------


@pytest.mark.clause(10)
def test_cancel_keeps_a_queued_task_from_ever_running(
    worker: Worker,
    idle_queue: str,
    key: str,
    store: redis.Redis,
    get_result: Callable[..., Any],
) -> None:
    cancelled = deposit.apply_async((key, "p-cancelled", 3), queue=idle_queue)
    kept = deposit.apply_async((key, "p-kept", 4), queue=idle_queue)
    cancel(cancelled)
    # Only now does a worker consume the queue (the revoke reached it first: a worker handles
    # its control messages in the order they were sent).
    replies = app.control.add_consumer(
        idle_queue, destination=[worker.hostname], reply=True, timeout=WAIT, limit=1
    )
    assert replies, f"worker {worker.hostname} did not start consuming {idle_queue}"
    try:
        assert get_result(kept, WAIT) == 4, "the deposit that was not cancelled did not run"
        get_result(cancelled, WAIT, propagate=False)
    finally:
        app.control.cancel_consumer(
            idle_queue, destination=[worker.hostname], reply=True, timeout=WAIT, limit=1
        )
    payments = store.hgetall(f"{key}:payments")
    assert cancelled.state == "REVOKED" and "p-cancelled" not in payments, (
        f"the cancelled deposit ended {cancelled.state} and the payments are {payments}: "
        "cancel must revoke the task by its id, app.control.revoke(result.id), so that every "
        "worker drops it when it arrives (forget() only deletes a stored result)"
    )


@pytest.mark.clause(11)
def test_cancel_lets_a_task_that_has_started_run_to_its_end(
    worker: Worker, queue: str, key: str, store: redis.Redis, get_result: Callable[..., Any]
) -> None:
    store.set(f"{key}:hold", 1)
    result = deposit.apply_async((key, "p-started", 6), queue=queue)
    wait_until(lambda: records(store, f"{key}:runs"), WAIT, "deposit never reached notify()")
    cancel(result)
    # The worker handles control messages in order: once it answers this ping, it has acted
    # on the revoke.
    assert app.control.ping(destination=[worker.hostname], timeout=WAIT, limit=1), (
        f"worker {worker.hostname} did not answer a ping"
    )
    store.delete(f"{key}:hold")
    get_result(result, WAIT, propagate=False)
    assert result.state == "SUCCESS" and result.result == 6, (
        f"cancelling a deposit that had started left it {result.state} ({result.result!r}), "
        "not SUCCESS with the balance 6: revoke without terminate=True. Terminating signals "
        "the pool process that runs the task, which may be running another task by then"
    )


# -- time limits -----------------------------------------------------------------------------


@pytest.mark.clause(12)
def test_convert_stores_all_its_output_at_the_end(
    worker: Worker, queue: str, key: str, store: redis.Redis, get_result: Callable[..., Any]
) -> None:
    assert convert.name == "celery_reliability.convert", f"convert is {convert.name!r}"
    value = get_result(convert.apply_async((key, 3), queue=queue), WAIT)
    output = store.lrange(f"{key}:output", 0, -1)
    assert value == 3 and output == ["0", "1", "2"], (
        f"convert({key!r}, 3) returned {value!r} and left {key}:output = {output}, not 3 and "
        "['0', '1', '2']: call work_step(key, i) for each i, then rename the partial list"
    )
    assert not store.exists(f"{key}:partial"), f"{key}:partial is still there after convert"


@pytest.mark.clause(13, 14)
def test_the_soft_time_limit_lets_convert_clean_up_and_fail(
    worker: Worker,
    head_starts: dict[str, HeadStart],
    store: redis.Redis,
    get_result: Callable[..., Any],
) -> None:
    # submit_limited(convert, [key, CONVERT_ITEMS], queue), called when the worker started
    started, items = head_starts["soft-limit"], CONVERT_ITEMS
    key, sent, result = started.key, started.sent, started.sent_result()
    assert isinstance(result, AsyncResult) and not started.ready_when_sent, (
        f"submit_limited returned {result!r}: it must send the task and return its "
        "AsyncResult at once"
    )
    get_result(result, WAIT, propagate=False)
    error = result.result
    output = store.lrange(f"{key}:output", 0, -1)
    partial = store.lrange(f"{key}:partial", 0, -1)
    assert not isinstance(error, celery.exceptions.TimeLimitExceeded), (
        f"convert was killed by the hard time limit ({error!r}) before it could clean up: the "
        f"soft limit must come first (soft_time_limit={SOFT_TIME_LIMIT}, "
        f"time_limit={TIME_LIMIT})"
    )
    if result.state == "SUCCESS":
        if len(output) == items:
            problem = f"send it with soft_time_limit={SOFT_TIME_LIMIT}"
        elif output:
            problem = (
                "it caught SoftTimeLimitExceeded and carried on, storing part of the work as "
                "the whole output; delete the partial list and raise the exception again"
            )
        else:
            problem = (
                "it cleaned up, then returned as if all was well; raise SoftTimeLimitExceeded "
                "again, so that the caller learns the work was not done"
            )
        pytest.fail(
            f"convert of {items} slow items under a {SOFT_TIME_LIMIT} s soft time limit ended "
            f"SUCCESS ({result.result!r}) with {len(output)} items in its output: {problem}",
            pytrace=False,
        )
    assert isinstance(error, celery.exceptions.SoftTimeLimitExceeded), (
        f"convert under a {SOFT_TIME_LIMIT} s soft time limit ended {result.state} "
        f"({error!r}), not failed with SoftTimeLimitExceeded"
    )
    assert not partial and not output, (
        f"convert stopped by its soft time limit left {key}:partial = {partial} and "
        f"{key}:output = {output}: on SoftTimeLimitExceeded, delete {key}:partial"
    )
    took = seconds_after(result, sent)
    assert took >= SOFT_TIME_LIMIT - CLOCK_SLACK, (
        f"convert was stopped {took:.3f} s after it was sent, before its {SOFT_TIME_LIMIT} s "
        "soft time limit"
    )
    assert_sent_with_both_limits(started, "convert")


@pytest.mark.clause(14)
def test_the_hard_time_limit_kills_a_task_that_ignores_the_soft_one(
    worker: Worker,
    head_starts: dict[str, HeadStart],
    store: redis.Redis,
    get_result: Callable[..., Any],
) -> None:
    # submit_limited(stubborn, [key], queue), called when the worker started
    started = head_starts["hard-limit"]
    key, sent, result = started.key, started.sent, started.sent_result()
    get_result(result, WAIT, propagate=False)
    error = result.result
    assert store.exists(f"{key}:soft-limit-seen"), (
        f"stubborn never saw SoftTimeLimitExceeded: send it with soft_time_limit="
        f"{SOFT_TIME_LIMIT} (it ended {result.state}, {error!r})"
    )
    assert isinstance(error, celery.exceptions.TimeLimitExceeded), (
        f"stubborn, which ignores its soft time limit and works for 1 s, ended {result.state} "
        f"({error!r}), not killed by a {TIME_LIMIT} s hard time limit: send it with "
        "time_limit=TIME_LIMIT"
    )
    assert not store.exists(f"{key}:finished"), "stubborn finished despite its hard time limit"
    took = seconds_after(result, sent)
    assert took >= TIME_LIMIT - CLOCK_SLACK, (
        f"stubborn was killed {took:.3f} s after it was sent, before its {TIME_LIMIT} s hard "
        f"time limit: the hard limit is time_limit={TIME_LIMIT}, the soft one "
        f"soft_time_limit={SOFT_TIME_LIMIT}"
    )
    runs = records(store, f"{key}:runs")
    assert len(runs) == 1, f"stubborn ran {len(runs)} times, not once"
    assert_sent_with_both_limits(started, "stubborn")
