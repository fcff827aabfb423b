"""Kata `celery_tasks`: a Celery app, its tasks, and a client that sends them and reads results."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

import celery.exceptions
import pytest
from celery.result import AsyncResult
from celery_tasks import (
    add,
    app,
    call_by_name,
    client,
    fib,
    fib_terms,
    settings,
    submit_add,
    whoami,
)

from plugins.celery_workers import Worker, check_app, json_only

# Every wait below is bounded: a task that never comes back fails its test within this many
# seconds, naming the task, its state and its queue (the get_result fixture).
WAIT = 5.0


def fibonacci(n: int) -> int:
    """The n-th Fibonacci number by fast doubling: F(2k) = F(k) (2 F(k+1) - F(k)),
    F(2k+1) = F(k)^2 + F(k+1)^2. Another way than the kata's loop, so it checks it."""
    a, b = 0, 1  # F(k), F(k+1) for k = the bits of n read so far
    for bit in bin(n)[2:]:
        a, b = a * (2 * b - a), a * a + b * b
        if bit == "1":
            a, b = b, a + b
    return a


@pytest.fixture(scope="module")
def queue(kata_namespace: Any) -> str:
    """The queue this module's worker consumes (a name no other run uses)."""
    return str(kata_namespace.name("tasks"))


@pytest.fixture(scope="module")
def worker(celery_worker: Callable[..., Worker], queue: str) -> Worker:
    # 3 processes, not Celery's default of one per core (2 here).
    return celery_worker("celery_tasks", queues=[queue], concurrency=3, app=app)


@pytest.fixture
def slow_results(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Every AsyncResult.get now takes 0.2 s to deliver (a result of 0), or raises
    celery.exceptions.TimeoutError at its timeout if that comes first; the list records the
    timeouts it was given. (A real Redis result backend checks a timeout only once a second:
    this makes the deadlines exact, and the test fast.)"""
    timeouts: list[float | None] = []

    def get(self: AsyncResult, timeout: float | None = None, *args: Any, **kwargs: Any) -> int:
        timeouts.append(None if timeout is None else round(timeout, 2))
        if timeout is None:
            pytest.fail(
                "get() was called without a timeout: when no worker runs the task, it waits "
                "for ever (the book's dispatcher hangs this way)",
                pytrace=False,
            )
        if timeout < 0.2:
            time.sleep(max(timeout, 0))
            raise celery.exceptions.TimeoutError("the operation timed out")
        time.sleep(0.2)
        return 0

    monkeypatch.setattr(AsyncResult, "get", get)
    return timeouts


# -- the app's settings ----------------------------------------------------------------------


@pytest.mark.clause(1)
def test_settings_reads_the_broker_url_from_the_environment_when_it_is_called(
    monkeypatch: pytest.MonkeyPatch, broker: Any
) -> None:
    elsewhere = "redis://:another-password@127.0.0.1:6399/3"
    monkeypatch.setenv("KATA_BROKER_URL", elsewhere)
    got = settings()
    assert got.get("broker_url") == elsewhere, (
        f"with KATA_BROKER_URL={elsewhere!r}, settings() gave broker_url "
        f"{got.get('broker_url')!r}: read os.environ['KATA_BROKER_URL'] inside settings(), "
        "when it is called (a value read at import time, or written into the code, misses the "
        "broker the app is deployed with)"
    )
    assert got.get("result_backend") == elsewhere, (
        f"settings() gave result_backend {got.get('result_backend')!r}: without a result "
        "backend the workers run the tasks but no caller can ever read a result; use the same "
        "URL as the broker"
    )
    monkeypatch.setenv("KATA_BROKER_URL", broker.url)
    check_app(app, broker)


@pytest.mark.clause(2)
def test_the_app_and_the_client_send_and_accept_json_only() -> None:
    got = settings()
    for key, wanted in (
        ("task_serializer", "json"),
        ("result_serializer", "json"),
        ("accept_content", ["json"]),
        ("result_accept_content", ["json"]),
    ):
        assert got.get(key) == wanted, (
            f"settings()[{key!r}] is {got.get(key)!r}, not {wanted!r}: JSON carries data "
            "only, while pickle carries code that the worker would run for whoever wrote the "
            "message"
        )
    json_only(app)
    json_only(client)


# -- tasks, run by a real worker -------------------------------------------------------------


@pytest.mark.clause(3)
def test_add_is_registered_by_its_name_and_returns_the_sum_on_a_worker(
    worker: Worker, queue: str, get_result: Callable[..., Any]
) -> None:
    assert add.name == "celery_tasks.add", f"add is registered as {add.name!r}"
    for x, y in ((2, 40), (-7, 3), (10**20, 1)):
        value = get_result(add.apply_async((x, y), queue=queue), WAIT)
        assert value == x + y, f"add({x}, {y}) returned {value!r} from the worker, not {x + y}"


@pytest.mark.clause(4)
def test_fib_returns_the_fibonacci_numbers_from_fib_0_and_big_ones_quickly(
    worker: Worker, queue: str, get_result: Callable[..., Any]
) -> None:
    assert fib.name == "celery_tasks.fib", f"fib is registered as {fib.name!r}"
    for n in (0, 1, 2, 3, 10, 91):
        value = get_result(fib.apply_async((n,), queue=queue), WAIT)
        assert value == fibonacci(n), (
            f"fib({n}) returned {value!r}, not {fibonacci(n)}: fib(0) = 0, fib(1) = 1, and "
            "each next one is the sum of the two before it"
        )
    started = time.monotonic()
    value = get_result(fib.apply_async((5000,), queue=queue), WAIT)
    assert value == fibonacci(5000), "fib(5000) is wrong (its first digits are 3878968454)"
    # A loop takes about a millisecond; the doubly recursive fib would take longer than the
    # universe has existed. 4 s leaves room for a loaded machine.
    assert time.monotonic() - started < 4.0, "fib(5000) took over 4 s: add in a loop"


@pytest.mark.clause(5)
def test_fib_of_a_negative_number_raises_value_error_at_the_caller(
    worker: Worker, queue: str, get_result: Callable[..., Any]
) -> None:
    result = fib.apply_async((-3,), queue=queue)
    with pytest.raises(ValueError, match="-3") as raised:
        get_result(result, WAIT)
    assert result.state == "FAILURE", f"fib(-3) ended {result.state}, not FAILURE"
    assert raised.value is not None


@pytest.mark.clause(6)
def test_whoami_returns_its_own_task_id_and_the_worker_that_ran_it(
    worker: Worker, queue: str, get_result: Callable[..., Any]
) -> None:
    assert whoami.name == "celery_tasks.whoami", f"whoami is registered as {whoami.name!r}"
    results = [whoami.apply_async(queue=queue) for _ in range(3)]
    for result in results:
        value = get_result(result, WAIT)
        assert isinstance(value, dict), f"whoami returned {value!r}, not a dict"
        assert value.get("id") == result.id, (
            f"whoami said its id is {value.get('id')!r}, but the caller's AsyncResult has id "
            f"{result.id!r}: bind=True gives the task itself as `self`, and self.request.id "
            "is the id of this run"
        )
        assert value.get("worker") == worker.hostname, (
            f"whoami said it ran on {value.get('worker')!r}, but worker {worker.hostname!r} "
            "ran it: self.request.hostname"
        )


# -- the client ------------------------------------------------------------------------------


@pytest.mark.clause(7)
def test_submit_add_sends_to_the_given_queue_and_returns_before_the_task_runs(
    worker: Worker, queue: str, get_result: Callable[..., Any], published: list[str]
) -> None:
    started = time.monotonic()
    result = submit_add(5, 6, queue, countdown=0.4)
    returned_after = time.monotonic() - started
    assert isinstance(result, AsyncResult), f"submit_add returned {result!r}, not an AsyncResult"
    assert published == ["celery_tasks.add"], f"submit_add sent {published}, not one add"
    assert returned_after < 0.3 and not result.ready(), (
        f"submit_add returned after {returned_after:.2f} s with the task "
        f"{'done' if result.ready() else 'pending'}: it must return as soon as the task is "
        "sent, not wait for the result (the task has a 0.4 s countdown here)"
    )
    assert get_result(result, WAIT) == 11, "add(5, 6) sent by submit_add did not return 11"


@pytest.mark.clause(7)
def test_submit_add_uses_the_queue_it_is_given(
    idle_queue: str, get_result: Callable[..., Any], pytestconfig: pytest.Config
) -> None:
    from plugins.celery_workers import sent_key

    result = submit_add(1, 2, idle_queue)
    sent = pytestconfig.stash[sent_key].get(result.id)
    assert sent is not None and sent[1] == idle_queue, (
        f"submit_add(1, 2, {idle_queue!r}) sent the task to "
        f"{sent[1] if sent else 'nowhere'!r}: apply_async(..., queue=queue), or the task waits "
        "in a queue that nobody serves"
    )


@pytest.mark.clause(8)
def test_countdown_delays_the_start_of_the_task(
    worker: Worker, queue: str, get_result: Callable[..., Any]
) -> None:
    countdown = 0.3
    sent = datetime.datetime.now(datetime.UTC)
    result = submit_add(2, 2, queue, countdown=countdown)
    assert get_result(result, WAIT) == 4
    done = result.date_done
    assert done is not None, "the result has no date_done"
    if done.tzinfo is None:
        done = done.replace(tzinfo=datetime.UTC)
    waited = (done - sent).total_seconds()
    # The worker holds a task with a countdown until its time has come: it cannot finish
    # sooner. (A few milliseconds of slack for the two clocks' rounding.)
    assert waited >= countdown - 0.01, (
        f"add with countdown={countdown} finished {waited:.3f} s after it was sent: pass "
        "countdown to apply_async, which makes the worker wait that long before it starts"
    )


@pytest.mark.clause(9)
def test_a_task_still_queued_when_it_expires_is_revoked_and_never_run(
    worker: Worker, get_result: Callable[..., Any], idle_queue: str
) -> None:
    soon = submit_add(1, 1, idle_queue, expires=0.1)
    later = submit_add(2, 2, idle_queue, expires=60.0)
    time.sleep(0.2)  # both still wait in a queue nobody serves; `soon` is past its expiry
    replies = app.control.add_consumer(
        idle_queue, destination=[worker.hostname], reply=True, timeout=WAIT, limit=1
    )
    assert replies, f"worker {worker.hostname} did not start consuming {idle_queue}"
    try:
        assert get_result(later, WAIT) == 4, "a task whose expiry is a minute away must still run"
        get_result(soon, WAIT, propagate=False)
        assert soon.state == "REVOKED", (
            f"a task sent with expires=0.1 reached a worker 0.2 s later and ended {soon.state}: "
            "pass expires to apply_async, so a worker revokes a task that waited too long"
        )
    finally:
        app.control.cancel_consumer(
            idle_queue, destination=[worker.hostname], reply=True, timeout=WAIT, limit=1
        )


@pytest.mark.clause(10)
def test_fib_terms_sends_every_task_before_it_waits_for_the_first(
    worker: Worker, queue: str, published: list[str], sent_at_first_wait: list[int]
) -> None:
    terms = fib_terms(7, queue, WAIT)
    assert terms == [fibonacci(i) for i in range(7)], f"fib_terms(7, ...) returned {terms}"
    assert published == ["celery_tasks.fib"] * 7, f"fib_terms(7, ...) sent {published}"
    assert sent_at_first_wait and sent_at_first_wait[0] == 7, (
        f"fib_terms had sent {sent_at_first_wait[0] if sent_at_first_wait else '?'} of its 7 "
        "tasks when it first waited for a result: send them all first, then collect, so that "
        "the workers compute them side by side"
    )


@pytest.mark.clause(11)
def test_fib_terms_timeout_bounds_the_whole_call(
    idle_queue: str, slow_results: list[float | None]
) -> None:
    timeout = 0.3
    started = time.monotonic()
    try:
        terms = fib_terms(6, idle_queue, timeout)
    except celery.exceptions.TimeoutError:
        pass
    else:
        pytest.fail(
            f"fib_terms(6, ..., timeout={timeout}) returned {terms} after "
            f"{time.monotonic() - started:.2f} s, although each result took 0.2 s to come: "
            "the timeout is for the whole call; give each get() only what is left of one "
            f"deadline (it was given {slow_results})"
        )
    took = time.monotonic() - started
    assert took >= timeout - 0.02, (
        f"fib_terms gave up after {took:.2f} s, before its {timeout} s timeout: a result that "
        "is not ready yet is not a failure; wait for it until the deadline"
    )


@pytest.mark.clause(12)
def test_call_by_name_sends_through_the_client_which_has_no_task_code(
    worker: Worker, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "celery_tasks.add" not in client.tasks, (
        "the client app has the task code registered: it must know only the broker and the "
        "backend, and call tasks by name"
    )
    calls: list[str] = []
    original = client.send_task

    def send_task(name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return original(name, *args, **kwargs)

    monkeypatch.setattr(client, "send_task", send_task)
    assert call_by_name("celery_tasks.add", [20, 22], queue, WAIT) == 42
    assert call_by_name("celery_tasks.fib", [12], queue, WAIT) == 144
    assert calls == ["celery_tasks.add", "celery_tasks.fib"], (
        f"call_by_name sent {calls} through client.send_task: it must send by name through "
        "the client, which needs no task code, not call the task objects of this module"
    )


@pytest.mark.clause(12)
def test_call_by_name_waits_at_most_its_timeout(
    idle_queue: str, slow_results: list[float | None]
) -> None:
    with pytest.raises(celery.exceptions.TimeoutError):
        call_by_name("celery_tasks.add", [1, 2], idle_queue, 0.1)
    assert slow_results == [0.1], (
        f"call_by_name(..., timeout=0.1) waited with get(timeout=...) {slow_results}: one "
        "get(timeout=timeout)"
    )


@pytest.mark.clause(13)
def test_call_by_name_raises_the_tasks_own_errors(worker: Worker, queue: str) -> None:
    with pytest.raises(celery.exceptions.NotRegistered):
        call_by_name("celery_tasks.no_such_task", [], queue, WAIT)
    with pytest.raises(ValueError, match="-2"):
        call_by_name("celery_tasks.fib", [-2], queue, WAIT)
