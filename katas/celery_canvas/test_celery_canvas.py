"""Kata `celery_canvas`: chains, groups, chords and callbacks, built as signatures, run by a worker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import celery.exceptions
import pytest
from celery import group
from celery.canvas import Signature
from celery.result import AsyncResult, ResultSet
from celery_canvas import (
    app,
    fan_out,
    fib_strict,
    fib_sum,
    fib_table,
    one_after_another,
    pipeline,
    with_callbacks,
)

from plugins.celery_workers import Worker

# Every wait below is bounded: a task that never comes back fails its test within this many
# seconds, naming the task, its state and its queue (the get_result fixture).
WAIT = 5.0
QUEUE_VARIABLE = "KATA_CANVAS_QUEUE"
# A callback runs within milliseconds of the end of its task; 2 s leaves room for a loaded
# machine.
RECORD_WAIT = 2.0
# The task `total` is imported inside its test, not here: pytest looks at every name of a test
# module while it collects, and looking at a task makes the app read its configuration, before
# the `queue` fixture has put this run's queue in KATA_CANVAS_QUEUE.


def fibonacci(n: int) -> int:
    """The n-th Fibonacci number by fast doubling, another way than the kata's loop."""
    a, b = 0, 1  # F(k), F(k+1) for k = the bits of n read so far
    for bit in bin(n)[2:]:
        a, b = a * (2 * b - a), a * a + b * b
        if bit == "1":
            a, b = b, a + b
    return a


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def queue(kata_namespace: Any) -> Iterator[str]:
    """The queue of this module's worker, which settings() makes every task's default queue
    (through KATA_CANVAS_QUEUE, set before the app reads its configuration)."""
    name = str(kata_namespace.name("canvas"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(QUEUE_VARIABLE, name)
        yield name


@pytest.fixture(scope="module")
def worker(celery_worker: Callable[..., Worker], queue: str) -> Worker:
    # 3 processes, not Celery's default of one per core (2 here): a group runs side by side.
    started = celery_worker("celery_canvas", queues=[queue], concurrency=3, app=app)
    assert app.conf.task_default_queue == queue, (
        f"the app's default queue is {app.conf.task_default_queue!r}, not {queue!r}: settings() "
        f"is given and must read {QUEUE_VARIABLE} when it is called"
    )
    return started


@pytest.fixture
def folder(kata_namespace: Any) -> Path:
    """An empty folder for the callbacks' records, which the worker can write to."""
    path = Path(kata_namespace.scratch) / str(kata_namespace.name("records"))
    path.mkdir()
    return path


# -- helpers ---------------------------------------------------------------------------------


def fail(message: str) -> NoReturn:
    """Fail the test with `message` alone (not the exception that was being handled)."""
    __tracebackhide__ = True
    raise pytest.fail.Exception(message, pytrace=False) from None


def kind(canvas: Any) -> str:
    """'chain', 'group', 'chord' or 'task' for a signature; the type's name otherwise."""
    if not isinstance(canvas, Signature):
        return type(canvas).__name__
    return str(canvas.subtask_type or "task")


def steps(canvas: Signature) -> list[Signature]:
    """The signatures inside a chain or a group, or a chord's header."""
    inside = canvas.tasks
    if isinstance(inside, group):  # a chord keeps its header as a group or as a list
        inside = inside.tasks
    return list(inside)


def names(signatures: list[Signature]) -> list[str]:
    return [str(s.task) for s in signatures]


def short(name: str) -> str:
    return name.rpartition(".")[2]


def canvas_from(builder: str, canvas: Any) -> Signature:
    """The canvas, or a failure saying that the builder sent it instead of returning it."""
    __tracebackhide__ = True
    if not isinstance(canvas, Signature):
        pytest.fail(
            f"{builder} returned {canvas!r} ({type(canvas).__name__}), not a signature: return "
            "the canvas unsent (chain(...), group(...), chord(header, body), task.s(...)); "
            "calling it, or .delay()/.apply_async(), sends it",
            pytrace=False,
        )
    return canvas


def send(builder: str, canvas: Any) -> Any:
    """canvas.apply_async(); a canvas whose tasks get the wrong arguments fails the test."""
    __tracebackhide__ = True
    try:
        return canvas_from(builder, canvas).apply_async()
    except TypeError as error:
        fail(
            f"sending {builder} failed: {error}. Celery checks a task's arguments when it "
            "sends it: look at which signature gets which arguments"
        )


def value_of(
    get_result: Callable[..., Any], result: Any, what: str, on_type_error: str = ""
) -> Any:
    """The value of a result; a task that raised TypeError (wrong arguments) or
    NotImplementedError on the worker fails the test, explained."""
    __tracebackhide__ = True
    try:
        return get_result(result, WAIT)
    except NotImplementedError:
        problem = "a task raised NotImplementedError on the worker: fill in its TODO(kata)"
    except TypeError as error:
        problem = f"it failed on the worker with TypeError: {error}. " + (
            on_type_error
            or "A step got the wrong arguments: a mutable signature (.s()) receives the "
            "previous result in front of its own arguments; an immutable one (.si()) "
            "receives only its own"
        )
    pytest.fail(f"{what}: {problem}", pytrace=False)


def member_values(get_result: Callable[..., Any], result: Any, what: str) -> list[Any]:
    """The values of a group's members, in the group's order."""
    __tracebackhide__ = True
    members = getattr(result, "results", None)
    if members is None:
        pytest.fail(
            f"{what} was sent and answered {result!r}, not a GroupResult: it is not a group",
            pytrace=False,
        )
    return [value_of(get_result, member, what) for member in members]


def wait_for_record(folder: Path, task_id: str, callback: str) -> dict[str, Any]:
    """The JSON record `<folder>/<task_id>.json`, once a callback on the worker has written it."""
    __tracebackhide__ = True
    path = folder / f"{task_id}.json"
    deadline = time.monotonic() + RECORD_WAIT
    others: list[str] = []
    while time.monotonic() < deadline and not others:
        if path.exists():
            try:
                record: dict[str, Any] = json.loads(path.read_text())
                return record
            except json.JSONDecodeError:  # caught half-written: read it again
                pass
        others = sorted(p.name for p in folder.iterdir() if p != path)
        time.sleep(0.01)
    if others:
        fail(
            f"{callback} wrote {others}, not {path.name}: name the record after the task it "
            f"is about ({task_id}), not after the callback's own id"
        )
    fail(
        f"{callback} wrote no {path.name} within {RECORD_WAIT:g} s after the task {task_id} "
        "ended (the folder is empty): the callback did not run, or it failed on the worker; "
        "see with which arguments the worker calls it"
    )


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float | None]]:
    """Every wait for a result from this process during the test, with the timeout it was
    given (AsyncResult.get/wait, and ResultSet/GroupResult.get/join/join_native)."""
    calls: list[tuple[str, float | None]] = []

    def watch(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def waiting(self: Any, *args: Any, **kwargs: Any) -> Any:
            timeout = kwargs["timeout"] if "timeout" in kwargs else (args[0] if args else None)
            calls.append((f"{cls.__name__}.{name}", timeout))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, waiting)

    for cls, methods in (
        (AsyncResult, ("get", "wait")),
        (ResultSet, ("get", "join", "join_native")),
    ):
        for name in methods:
            watch(cls, name)
    return calls


# -- the tasks -------------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_total_takes_one_list_and_returns_its_sum(
    worker: Worker, get_result: Callable[..., Any]
) -> None:
    from celery_canvas import total

    assert total.name == "celery_canvas.total", f"total is registered as {total.name!r}"
    for values in ([3, 5, 8, 13], [], [10**20, -1]):
        got = value_of(
            get_result,
            total.apply_async((values,)),
            f"total({values})",
            on_type_error="A chord calls its body with one argument, the list of results: "
            "def total(values), not def total(*values)",
        )
        assert got == sum(values), f"total({values}) returned {got!r}, not {sum(values)}"


# -- the builders ----------------------------------------------------------------------------


@pytest.mark.clause(4)
def test_the_builders_send_nothing_and_return_their_canvas(
    published: list[str], folder: Path
) -> None:
    for builder, call in (
        ("pipeline(3)", lambda: pipeline(3)),
        ("one_after_another([7, 3, 10])", lambda: one_after_another([7, 3, 10])),
        ("fan_out([12, 0, 7])", lambda: fan_out([12, 0, 7])),
        ("fib_sum(10)", lambda: fib_sum(10)),
        ("with_callbacks(12, folder)", lambda: with_callbacks(12, str(folder))),
    ):
        canvas = call()
        assert not published, (
            f"{builder} sent {published}: a builder only writes the canvas down and returns "
            "it, and the caller sends it (chain(...)() or chord(header)(body) send at once)"
        )
        canvas_from(builder, canvas)


@pytest.mark.clause(5)
def test_pipeline_is_a_chain_of_add_mul_add_each_fed_the_result_before_it() -> None:
    canvas = canvas_from("pipeline(3)", pipeline(3))
    assert kind(canvas) == "chain", (
        f"pipeline(3) returned a {kind(canvas)} ({canvas!r}), not a chain: only a chain runs "
        "its steps one after another and hands each result to the next step"
    )
    inside = steps(canvas)
    assert names(inside) == ["celery_canvas.add", "celery_canvas.mul", "celery_canvas.add"], (
        f"pipeline(3) chains {[short(n) for n in names(inside)]}, not add, mul, add"
    )
    frozen = [repr(s) for s in inside[1:] if s.immutable]
    assert not frozen, (
        f"in pipeline(3), {frozen} are immutable (.si()): such a step never receives the "
        "result of the step before it; make them with .s()"
    )


@pytest.mark.clause(5)
def test_pipeline_runs_each_step_on_the_result_of_the_step_before(
    worker: Worker, get_result: Callable[..., Any]
) -> None:
    for x in (3, -7):
        result = send(f"pipeline({x})", pipeline(x))
        got = value_of(get_result, result, f"pipeline({x})")
        wanted = (x + 4) * 10 - 1
        assert got == wanted, (
            f"pipeline({x}) gave {got!r}, not ({x} + 4) * 10 - 1 = {wanted}: add(x, 4) first, "
            "then mul by 10, then add -1, each step on the result of the one before"
        )


@pytest.mark.clause(6)
def test_one_after_another_is_a_chain_of_immutable_fib_steps() -> None:
    ns = [7, 3, 10]
    canvas = canvas_from(f"one_after_another({ns})", one_after_another(ns))
    assert kind(canvas) == "chain", (
        f"one_after_another({ns}) returned a {kind(canvas)} ({canvas!r}), not a chain: a "
        "group would run the steps side by side, not one after another"
    )
    inside = steps(canvas)
    assert names(inside) == ["celery_canvas.fib"] * 3, (
        f"one_after_another({ns}) chains {[short(n) for n in names(inside)]}, not three fib"
    )
    mutable = [repr(s) for s in inside[1:] if not s.immutable]
    assert not mutable, (
        f"in one_after_another({ns}), {mutable} are mutable (.s()): the worker would call "
        "fib(previous result, n), one argument too many; make them with .si()"
    )


@pytest.mark.clause(6)
def test_one_after_another_runs_each_fib_in_turn_and_keeps_every_result(
    worker: Worker, get_result: Callable[..., Any]
) -> None:
    ns = [7, 3, 10, 1]
    result = send(f"one_after_another({ns})", one_after_another(ns))
    last = value_of(get_result, result, f"one_after_another({ns})")
    assert last == fibonacci(ns[-1]), (
        f"one_after_another({ns}) gave {last!r}, not fib({ns[-1]}) = {fibonacci(ns[-1])}: "
        "a chain's result is the result of its last step"
    )
    earlier = []
    step = getattr(result, "parent", None)
    while step is not None:
        earlier.append(value_of(get_result, step, f"one_after_another({ns})"))
        step = step.parent
    wanted = [fibonacci(n) for n in reversed(ns[:-1])]
    assert earlier == wanted, (
        f"walking .parent from the result of one_after_another({ns}) gave {earlier}, not "
        f"{wanted} (fib of {list(reversed(ns[:-1]))}): chain one fib step per n, in order"
    )


@pytest.mark.clause(7)
def test_fan_out_is_a_group_of_one_fib_per_n_duplicates_included() -> None:
    ns = [12, 0, 7, 12, 1]
    canvas = canvas_from(f"fan_out({ns})", fan_out(iter(ns)))
    assert kind(canvas) == "group", (
        f"fan_out({ns}) returned a {kind(canvas)} ({canvas!r}), not a group: only a group "
        "sends all its tasks at once, to run side by side"
    )
    inside = steps(canvas)
    described = [f"{short(str(s.task))}{tuple(s.args)}" for s in inside]
    wanted = [f"fib({n},)" for n in ns]
    assert described == wanted, (
        f"fan_out over {ns} (given as an iterator) holds {described}, not {wanted}: one "
        "fib per n, in the order of ns, duplicates included, reading ns once"
    )


@pytest.mark.clause(7)
def test_fan_out_results_come_in_the_order_of_ns(
    worker: Worker, get_result: Callable[..., Any]
) -> None:
    ns = [12, 0, 7, 12, 1]
    result = send(f"fan_out({ns})", fan_out(n for n in ns))
    got = member_values(get_result, result, f"fan_out({ns})")
    wanted = [fibonacci(n) for n in ns]
    assert got == wanted, (
        f"fan_out over a generator of {ns} gave {got}, not {wanted}: one fib(n) per n, in "
        "the order of ns, duplicates included"
    )


@pytest.mark.clause(8)
def test_fib_sum_is_a_chord_of_fib_terms_with_total_as_its_body() -> None:
    canvas = canvas_from("fib_sum(6)", fib_sum(6))
    assert kind(canvas) == "chord", (
        f"fib_sum(6) returned a {kind(canvas)} ({canvas!r}), not a chord: a chord runs its "
        "header side by side, then its body once on the list of their results"
    )
    header = steps(canvas)
    described = [f"{short(str(s.task))}{tuple(s.args)}" for s in header]
    wanted = [f"fib({i},)" for i in range(6)]
    assert described == wanted, f"the header of fib_sum(6) is {described}, not {wanted}" + (
        ": header and body are swapped; chord(header, body) takes the group first"
        if described and described[0].startswith("total")
        else ": one fib(i) for each i in range(n)"
    )
    body = canvas.body
    assert isinstance(body, Signature) and body.task == "celery_canvas.total", (
        f"the body of fib_sum(6) is {body!r}, not total: the body adds up the header's results"
    )
    assert not body.immutable, (
        f"the body of fib_sum(6) is immutable ({body!r}): an immutable body (.si()) never "
        "receives the header's results; use total.s()"
    )


@pytest.mark.clause(1, 8)
def test_fib_sum_adds_the_fib_terms_on_the_worker(
    worker: Worker, get_result: Callable[..., Any]
) -> None:
    for n in (10, 1, 25):
        result = send(f"fib_sum({n})", fib_sum(n))
        hint = (
            "A chord calls its body once, with one argument: the list of the header's results "
            "(total.s(), def total(values))"
        )
        try:
            got = value_of(get_result, result, f"fib_sum({n})", on_type_error=hint)
        except celery.exceptions.ChordError as error:
            fail(f"the body of fib_sum({n}) could not run: {error}. {hint}")
        wanted = sum(fibonacci(i) for i in range(n))
        assert got == wanted, (
            f"fib_sum({n}) gave {got!r}, not fib(0) + ... + fib({n - 1}) = {wanted}: the header "
            "is fib(i) for i in range(n)"
        )


@pytest.mark.clause(9)
def test_with_callbacks_sets_remember_result_as_link_and_remember_failure_as_link_error(
    folder: Path,
) -> None:
    canvas = canvas_from("with_callbacks(12, folder)", with_callbacks(12, str(folder)))
    assert kind(canvas) == "task" and canvas.task == "celery_canvas.fib", (
        f"with_callbacks(12, folder) returned {canvas!r}, not the signature of fib(12) (note "
        "that sig.link(callback) and sig.link_error(callback) return the callback, not sig)"
    )
    assert tuple(canvas.args) == (12,), f"with_callbacks(12, ...) calls fib{tuple(canvas.args)}"
    for option, wanted in (
        ("link", "celery_canvas.remember_result"),
        ("link_error", "celery_canvas.remember_failure"),
    ):
        given = canvas.options.get(option)
        callbacks = given if isinstance(given, list | tuple) else [given] if given else []
        assert names(callbacks) == [wanted], (
            f"the {option} of with_callbacks(12, folder) is {callbacks}, not [{short(wanted)}"
            f"(folder)]: link runs when the task succeeds, link_error when it fails"
        )
        callback = callbacks[0]
        assert tuple(callback.args) == (str(folder),) and not callback.immutable, (
            f"the {option} callback is {callback!r}: make it {short(wanted)}.s(folder), "
            "mutable, so that the worker puts what it passes (the result, or request, exc and "
            "traceback) in front of folder"
        )


@pytest.mark.clause(2, 9)
def test_link_records_the_result_under_the_id_of_the_task_that_succeeded(
    worker: Worker, get_result: Callable[..., Any], folder: Path
) -> None:
    result = send("with_callbacks", with_callbacks(12, str(folder)))
    try:
        value = get_result(result, WAIT)
    except TypeError as error:
        fail(
            f"fib(12) with its callbacks failed: {error}. The worker checks a link callback's "
            "arguments when it sends it: remember_result.s(folder) gets (result, folder); an "
            ".si() or a callback in the wrong option gets the wrong ones"
        )
    assert value == 144, f"fib(12) with its callbacks returned {value!r}, not 144"
    record = wait_for_record(folder, result.id, "the link callback remember_result")
    assert record == {"id": result.id, "value": 144}, (
        f"remember_result wrote {record}, not {{'id': {result.id!r}, 'value': 144}}: the id is "
        "that of the task whose result it received (self.request.parent_id)"
    )
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"{result.id}.json"], (
        f"after fib(12) succeeded the folder holds {files}: only the link callback runs, once"
    )


@pytest.mark.clause(3, 9)
def test_link_error_records_which_task_failed_and_with_what_error(
    worker: Worker, get_result: Callable[..., Any], folder: Path
) -> None:
    result = send("with_callbacks", with_callbacks(-4, str(folder)))
    with pytest.raises(ValueError, match="-4") as raised:
        get_result(result, WAIT)
    record = wait_for_record(folder, result.id, "the link_error callback remember_failure")
    wanted = {
        "id": result.id,
        "task": "celery_canvas.fib",
        "error": "ValueError",
        "message": str(raised.value),
    }
    assert record == wanted, (
        f"remember_failure wrote {record}, not {wanted}: request is the failed task's request "
        "(request.id, request.task), exc its exception (type(exc).__name__, str(exc))"
    )
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"{result.id}.json"], (
        f"after fib(-4) failed the folder holds {files}: only the link_error callback runs"
    )


# -- groups that fail ------------------------------------------------------------------------


@pytest.mark.clause(10)
def test_fib_strict_returns_the_terms_in_the_order_of_ns(worker: Worker) -> None:
    ns = [20, 3, 0, 9]
    got = fib_strict(ns, WAIT)
    wanted = [fibonacci(n) for n in ns]
    assert got == wanted, f"fib_strict({ns}, ...) returned {got!r}, not {wanted}"


@pytest.mark.clause(10)
def test_fib_strict_raises_the_error_of_a_failed_member(worker: Worker) -> None:
    ns = [20, -3, 9]
    try:
        got = fib_strict(ns, WAIT)
    except ValueError as error:
        raised = error
    else:
        pytest.fail(
            f"fib_strict({ns}, ...) returned {got!r} although fib(-3) failed: a group's "
            "get() raises the first failed member's exception; propagate=False hides it in "
            "the list instead",
            pytrace=False,
        )
    assert "-3" in str(raised), f"fib_strict({ns}) raised {raised!r}, not fib(-3)'s error"


@pytest.mark.clause(11)
def test_fib_table_keeps_the_other_values_when_one_member_fails(worker: Worker) -> None:
    ns = [12, -3, 7, 0]
    try:
        got = fib_table(ns, WAIT)
    except ValueError as error:
        fail(
            f"fib_table({ns}, ...) raised {error!r}: one failed member lost the values of the "
            "three others. get(propagate=False) returns every member's value, with the failed "
            "member's exception in its place"
        )
    wanted = {12: 144, -3: None, 7: 13, 0: 0}
    assert got == wanted, (
        f"fib_table({ns}, ...) returned {got!r}, not {wanted}: None (not the exception) for "
        "the member that failed"
    )


@pytest.mark.clause(11)
def test_fib_table_reads_a_generator_of_ns_once(worker: Worker) -> None:
    ns = [12, 5, 7, 0]
    try:
        got = fib_table((n for n in ns), WAIT)
    except ValueError as error:
        fail(
            f"fib_table over a generator of {ns} raised {error!r}: a generator is read once; "
            "the group used it up, and whatever read it next found it empty. Make a list "
            "of it first"
        )
    wanted = {n: fibonacci(n) for n in ns}
    assert got == wanted, f"fib_table over a generator of {ns} returned {got!r}, not {wanted}" + (
        ": a generator is read once; the group used it up, and zip() found it empty. "
        "Make a list of it first"
        if got == {}
        else ""
    )


@pytest.mark.clause(12)
def test_fib_strict_and_fib_table_never_wait_without_a_timeout(
    worker: Worker, waits: list[tuple[str, float | None]]
) -> None:
    timeout = 4.5
    assert fib_strict([5, 6], timeout) == [5, 8], "fib_strict([5, 6], ...) is wrong"
    assert fib_table([5, 6], timeout) == {5: 5, 6: 8}, "fib_table([5, 6], ...) is wrong"
    assert waits, "neither fib_strict nor fib_table waited for a result"
    unbounded = [(call, t) for call, t in waits if t is None or t > timeout]
    assert not unbounded, (
        f"with timeout={timeout}, these waits had no timeout or a longer one: {unbounded}. "
        "A wait with no timeout blocks for ever when no worker runs the tasks"
    )


@pytest.mark.clause(12)
def test_fib_strict_and_fib_table_raise_timeout_error_when_the_group_is_late(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def late(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise celery.exceptions.TimeoutError("The operation timed out.")

    # Every wait now times out at once, as it would if the group were not done in time.
    for cls, methods in ((AsyncResult, ("get", "wait")), (ResultSet, ("get", "join_native"))):
        for name in methods:
            monkeypatch.setattr(cls, name, late)
    for function in (fib_strict, fib_table):
        try:
            got = function([5, 6], 0.5)
        except celery.exceptions.TimeoutError:
            continue
        pytest.fail(
            f"{function.__name__}([5, 6], 0.5) returned {got!r} although the group was not "
            "done in time: let celery.exceptions.TimeoutError reach the caller (a late task "
            "has not failed; None would say it had)",
            pytrace=False,
        )
