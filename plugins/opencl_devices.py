"""OpenCL for the katas: results on a real device (PoCL on the CPU), memory checked on Oclgrind.

- `cl_queue` is a command queue (profiling on) on a fresh context. A test that asks for it runs
  twice: `[pocl]` on the chosen real device, where the results are checked, and `[oclgrind]` on
  Oclgrind, a simulator that watches every memory access. After the `[oclgrind]` run, whatever
  Oclgrind reported while the test ran (a data race between work-items, an access outside a
  buffer, a barrier only some work-items reached) fails the test, explained
  (plugins/oclgrind_report.py). Oclgrind absent: those runs are skipped with how to get it
  (they fail under --kata-require=opencl, as CI runs).
- `pocl_queue` is the real device only, for tests that measure time or use big arrays
  (Oclgrind runs work-items one after another).
- The device: `--kata-opencl-device=P:D` (platform and device index) or a name fragment, else
  `PYOPENCL_CTX` in the same form, else the first device, not Oclgrind's, that can build a
  kernel (the wheel's PoCL cannot on a CPU newer than its LLVM: Debian's PoCL, listed first
  where installed, can). Never pyopencl's interactive prompt.

Oclgrind is found as Debian installs it (`apt-get install oclgrind`) or where KATA_OCLGRIND_ICD
points; this plugin gives the OpenCL loader a vendor folder naming it beside every system ICD,
with race detection on and the log in a file, before any test imports pyopencl.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from plugins import oclgrind_report, settings
from plugins.backends import OCLGRIND_PLATFORM, first_opencl_device_that_builds

DEVICE_OPTION = "--kata-opencl-device"
ICD_VARIABLE = "KATA_OCLGRIND_ICD"
OWNED_VARIABLE = "KATA_OPENCL_VENDORS"  # the vendor folder this plugin made (not the user's)
OCLGRIND_ICD_PLACES = (
    "/usr/lib/oclgrind/liboclgrind-rt-icd.so",
    "/usr/lib/x86_64-linux-gnu/liboclgrind-rt-icd.so",
    "/usr/local/lib/liboclgrind-rt-icd.so",
    "/opt/homebrew/lib/liboclgrind-rt-icd.dylib",
    "/usr/local/lib/liboclgrind-rt-icd.dylib",
)
SYSTEM_VENDORS = Path("/etc/OpenCL/vendors")
OCLGRIND = "oclgrind"
POCL = "pocl"
HOW_TO_GET_OCLGRIND = (
    "install the Oclgrind simulator: apt-get install oclgrind (Debian, Ubuntu), brew install "
    "oclgrind (macOS), or build it from github.com/jrprice/Oclgrind"
)

state_key = pytest.StashKey["OpenCL"]()
real_device_key = pytest.StashKey[Any]()  # the device results are checked on, once chosen


@dataclass(frozen=True)
class UnsafeLine:
    """A source line where Oclgrind saw a kernel go out of bounds or diverge at a barrier."""

    kernel: str
    line: int
    text: str
    test: str  # the [oclgrind] test that saw it

    def same_place(self, other: UnsafeLine) -> bool:
        return (self.kernel, self.line, self.text) == (other.kernel, other.line, other.text)

    def in_source_of(self, kernel: Any) -> bool:
        """Whether `kernel` (a pyopencl Kernel) still has this line; True when its source is
        unknown (a program built from a binary)."""
        if str(kernel.function_name) != self.kernel:
            return False
        import pyopencl as cl

        try:
            program = kernel.get_info(cl.kernel_info.PROGRAM)
            source = str(program.get_info(cl.program_info.SOURCE))
        except cl.Error:  # no source to compare: judge by the kernel's name
            return True
        lines = source.splitlines()
        return self.line <= 0 or (
            self.line <= len(lines) and lines[self.line - 1].strip() == self.text.strip()
        )


@dataclass
class OpenCL:
    """This run's OpenCL set-up: the Oclgrind log, and where each test's part of it starts."""

    log: Path | None = None  # Oclgrind's log file, None when Oclgrind was not found
    folder: Path | None = None
    offsets: dict[str, int] = field(default_factory=dict)  # test id -> log size at its start
    queues: dict[str, Any] = field(default_factory=dict)  # test id -> its Oclgrind queue
    out_of_bounds: set[tuple[Any, ...]] = field(default_factory=set)  # twins not to run on PoCL
    # test file -> where Oclgrind saw kernels go out of bounds or diverge at a barrier there
    unsafe_kernels: dict[str, list[UnsafeLine]] = field(default_factory=dict)


def oclgrind_library() -> Path | None:
    chosen = os.environ.get(ICD_VARIABLE)
    if chosen:
        return Path(chosen) if Path(chosen).is_file() else None
    return next((Path(p) for p in OCLGRIND_ICD_PLACES if Path(p).is_file()), None)


# -- options and configure -------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("kata").addoption(
        DEVICE_OPTION,
        default=None,
        help="the OpenCL device for results: P:D (platform and device index) or a part of its "
        "name; default PYOPENCL_CTX, else the first device that is not Oclgrind",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before anything loads pyopencl: the OpenCL loader must see Oclgrind beside the system's
    devices, with race detection on and its reports going to a file this run reads."""
    state = OpenCL()
    config.stash[state_key] = state
    library = oclgrind_library()
    vendors = os.environ.get("OCL_ICD_VENDORS")
    if library is None or (vendors is not None and vendors != os.environ.get(OWNED_VARIABLE)):
        return  # no Oclgrind, or a set-up of the user's own that is theirs to keep
    # (A folder this plugin made for a parent run, a self-check's, is replaced: each run
    # reads its own log.)
    state.folder = Path(tempfile.mkdtemp(prefix="kata-opencl-"))
    (state.folder / "oclgrind.icd").write_text(f"{library}\n")
    if SYSTEM_VENDORS.is_dir():  # the folder replaces the system's: keep its devices too
        for icd in SYSTEM_VENDORS.glob("*.icd"):
            (state.folder / icd.name).write_text(icd.read_text())
    state.log = state.folder / "oclgrind.log"
    state.log.touch()
    os.environ.update(
        OCL_ICD_VENDORS=str(state.folder),
        **{OWNED_VARIABLE: str(state.folder)},
        OCLGRIND_DATA_RACES="1",
        OCLGRIND_LOG=str(state.log),
        # Oclgrind stops reporting after 1000 problems per process (its default): a later
        # test's races would then pass unseen.
        OCLGRIND_MAX_ERRORS="1000000",
        # pyopencl's binary cache hands Oclgrind a built kernel without its source, and then
        # the reports say "source not available" instead of the learner's line.
        PYOPENCL_NO_CACHE="1",
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(state_key, None)
    if state is not None and state.folder is not None:
        for path in state.folder.iterdir():
            path.unlink(missing_ok=True)
        state.folder.rmdir()


def pytest_report_header(config: pytest.Config) -> str | None:
    try:
        import pyopencl as cl

        platforms = cl.get_platforms()
    except Exception:  # absent or broken: the hardware plugin's header says why
        return None
    names = ", ".join(f"{p.name} ({', '.join(d.name for d in p.get_devices())})" for p in platforms)
    return f"OpenCL platforms: {names or 'none'}"


# -- collection ------------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cl_queue" not in metafunc.fixturenames:
        return
    metafunc.parametrize(
        "cl_device_kind",
        [
            # Oclgrind first: an out-of-bounds write found there is not then run on the real
            # device, where (on the CPU) it corrupts the heap and can crash the whole run.
            pytest.param(OCLGRIND, id=OCLGRIND),
            pytest.param(POCL, id=POCL),
        ],
    )


def twin_key(item: pytest.Item) -> tuple[Any, ...] | None:
    """What a test's `[oclgrind]` and `[pocl]` runs have in common (None: not such a test)."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or "cl_device_kind" not in callspec.params:
        return None
    # By the other parameters' values (their indices differ between the two twins).
    others = tuple(
        sorted((k, _hashable(v)) for k, v in callspec.params.items() if k != "cl_device_kind")
    )
    return (str(item.path), getattr(item, "originalname", item.name), others)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _on_oclgrind(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("cl_device_kind") == OCLGRIND


def _on_real_device(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    # (padded_buffers: every fixture that gives a real device asks for it)
    return not _on_oclgrind(item) and ("cl_queue" in fixtures or "padded_buffers" in fixtures)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A file's `[oclgrind]` runs all come before its first test on the real device, whatever
    reordered the items: what they find unsafe is then never launched there (see
    `guard_real_device`)."""
    oclgrind_runs: dict[Path, list[pytest.Item]] = {}
    for item in items:
        if _on_oclgrind(item):
            oclgrind_runs.setdefault(item.path, []).append(item)
    ordered: list[pytest.Item] = []
    placed: set[int] = set()
    for item in items:
        if id(item) in placed:
            continue
        if _on_real_device(item):
            for run in oclgrind_runs.pop(item.path, []):
                if id(run) not in placed:
                    ordered.append(run)
                    placed.add(id(run))
        ordered.append(item)
        placed.add(id(item))
    items[:] = ordered


# -- fixtures --------------------------------------------------------------------------------


def _device_choice(config: pytest.Config) -> str:
    return str(config.getoption(DEVICE_OPTION) or os.environ.get("PYOPENCL_CTX", "") or "")


def real_device(config: pytest.Config) -> Any:
    """The device results are checked on (see the module's docstring for the choice), chosen
    once per run."""
    if real_device_key not in config.stash:
        config.stash[real_device_key] = find_real_device(_device_choice(config))
    return config.stash[real_device_key]


def find_real_device(choice: str) -> Any:
    """The device `choice` names ("P:D" indices or a name fragment), else the first device,
    not Oclgrind's, that can build a kernel."""
    import pyopencl as cl

    platforms = cl.get_platforms()
    if choice:
        head, _, tail = choice.partition(":")
        if head.isdigit():
            devices = platforms[int(head)].get_devices()
            return devices[int(tail) if tail.isdigit() else 0]
        for platform in platforms:
            for device in platform.get_devices():
                if choice.lower() in f"{platform.name} {device.name}".lower():
                    return device
        raise pytest.UsageError(f"no OpenCL device matches {choice!r}")
    device, problems = first_opencl_device_that_builds(platforms)
    if device is not None:
        return device
    if problems:
        raise pytest.UsageError(
            "no OpenCL device here can build a kernel ("
            + "; ".join(problems)
            + "). The PoCL in pyopencl's wheels (3.0, LLVM 14) cannot build for a CPU its "
            "LLVM does not know; Debian's PoCL can: apt-get install pocl-opencl-icd"
        )
    raise pytest.UsageError(
        "no OpenCL device beside Oclgrind: install PoCL (pip install -e '.[opencl]')"
    )


def oclgrind_device() -> Any:
    import pyopencl as cl

    for platform in cl.get_platforms():
        if platform.name == OCLGRIND_PLATFORM:
            return platform.get_devices()[0]
    return None


# Room past the end of every buffer on the real device. A kernel that writes past a buffer (a
# missing `if (i < n)` with a rounded-up global size) corrupts the heap of a CPU device, which
# then crashes the whole test run far from the cause: it writes here instead, and its test fails
# on its results, or on Oclgrind with the explanation.
SLACK_BYTES = 1 << 16


def padded_buffer_class() -> type:
    """pyopencl.Buffer, but on a real device each buffer has SLACK_BYTES (or its own size, if
    larger) of room past its end; `size` still says what was asked for."""
    import pyopencl as cl

    real: Any = cl.Buffer

    class PaddedBuffer(real):  # type: ignore[misc]
        def __init__(self, context: Any, flags: int, size: int = 0, hostbuf: Any = None) -> None:
            arguments = _padded(context, flags, size, hostbuf)
            if arguments is None:
                super().__init__(context, flags, size, hostbuf)
                self.requested_size = int(super().size)
                return
            super().__init__(context, flags, *arguments[1:])
            self.requested_size = arguments[0]

        @property
        def size(self) -> int:
            return int(self.requested_size)

    PaddedBuffer.__name__ = PaddedBuffer.__qualname__ = "Buffer"
    PaddedBuffer.__module__ = real.__module__
    return PaddedBuffer


def _padded(context: Any, flags: int, size: int, hostbuf: Any) -> tuple[int, int, Any] | None:
    """(requested bytes, padded size, padded host buffer) or None to leave the call alone."""
    import numpy as np
    import pyopencl as cl

    try:
        if any(d.platform.name == OCLGRIND_PLATFORM for d in context.devices):
            return None  # Oclgrind must see the true end, to report what crosses it
        if flags & cl.mem_flags.USE_HOST_PTR:
            return None  # the buffer is the host's memory itself
        if hostbuf is None:
            return (size, size + max(SLACK_BYTES, size), None) if size > 0 else None
        data = np.frombuffer(memoryview(hostbuf).cast("B"), dtype=np.uint8)
        requested = size or data.nbytes
        if not flags & cl.mem_flags.COPY_HOST_PTR or requested > data.nbytes or requested <= 0:
            return None
        padded = np.zeros(requested + max(SLACK_BYTES, requested), dtype=np.uint8)
        padded[:requested] = data[:requested]
        return requested, padded.nbytes, padded
    except (TypeError, ValueError, BufferError):  # pyopencl's own call says what is wrong
        return None


def _queue_on(device: Any) -> Any:
    import pyopencl as cl

    context = cl.Context([device])
    return cl.CommandQueue(context, properties=cl.command_queue_properties.PROFILING_ENABLE)


@pytest.fixture
def cl_device_kind() -> str:
    return POCL


@pytest.fixture
def padded_buffers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Buffers on the real device get room past their end (see SLACK_BYTES), and a kernel
    Oclgrind found unsafe is not launched there (see `guard_real_device`)."""
    import pyopencl as cl
    from pyopencl import _cl

    monkeypatch.setattr(cl, "Buffer", padded_buffer_class())
    unsafe = request.config.stash[state_key].unsafe_kernels.setdefault(str(request.path), [])
    guarded = guard_real_device(_cl.enqueue_nd_range_kernel, unsafe)
    # pyopencl's kernel invokers call `_cl.enqueue_nd_range_kernel`; learners may call the
    # public name.
    monkeypatch.setattr(_cl, "enqueue_nd_range_kernel", guarded)
    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", guarded)


def guard_real_device(launch: Any, unsafe: list[UnsafeLine]) -> Any:
    """`launch` (pyopencl's enqueue_nd_range_kernel), except that a kernel Oclgrind found
    unsafe fails the test instead of running on a real device: out of bounds or at a barrier
    only some work-items reach, a CPU device can corrupt its memory or crash the whole run
    (PoCL segfaults on such a barrier). A kernel is the same one when its name and the line
    Oclgrind named are the same: a fixed or different kernel of that name runs."""

    def guarded(queue: Any, kernel: Any, *arguments: Any) -> Any:
        if queue.device.platform.name != OCLGRIND_PLATFORM:
            for seen in unsafe:
                if seen.in_source_of(kernel):
                    pytest.fail(
                        f"kernel `{seen.kernel}` was not launched on the real device: on "
                        f"Oclgrind (in {seen.test}) it read or wrote outside a buffer, or "
                        "reached a barrier in some work-items only, at line "
                        f"{seen.line}: `{seen.text.strip()}`. On a CPU device that can "
                        "corrupt memory or crash the whole test run. Fix what that test "
                        "reports first.",
                        pytrace=False,
                    )
        return launch(queue, kernel, *arguments)

    return guarded


@pytest.fixture
def cl_queue(
    request: pytest.FixtureRequest, cl_device_kind: str, padded_buffers: None
) -> Iterator[Any]:
    """A command queue on a fresh context: on the real device (`[pocl]`) or on Oclgrind
    (`[oclgrind]`, where every memory problem the test's kernels have fails the test)."""
    if cl_device_kind == POCL:
        queue = _queue_on(real_device(request.config))
    else:
        state = request.config.stash[state_key]
        device = oclgrind_device()
        if device is None or state.log is None:
            why = f"Oclgrind is not available here: {HOW_TO_GET_OCLGRIND}"
            if "opencl" in settings.of(request.config).require:
                pytest.fail(f"required by --kata-require=opencl but absent: {why}", pytrace=False)
            pytest.skip(why)
        queue = _queue_on(device)
        # Oclgrind truncates its log whenever a context is made: what this test's context
        # logs starts here.
        state.offsets[request.node.nodeid] = state.log.stat().st_size
        state.queues[request.node.nodeid] = queue
    yield queue
    queue.finish()


@pytest.fixture
def pocl_queue(request: pytest.FixtureRequest, padded_buffers: None) -> Iterator[Any]:
    """A command queue (profiling on) on the real device only."""
    queue = _queue_on(real_device(request.config))
    yield queue
    queue.finish()


# -- run time --------------------------------------------------------------------------------


def _reports(item: pytest.Item) -> str:
    state = item.config.stash.get(state_key, None)
    if state is None or state.log is None or item.nodeid not in state.offsets:
        return ""
    queue = state.queues.pop(item.nodeid, None)
    if queue is not None:
        with contextlib.suppress(Exception):  # a broken queue: the test's own error says why
            queue.finish()  # every kernel the test enqueued has run, and Oclgrind has logged it
    with state.log.open("rb") as log:
        log.seek(state.offsets[item.nodeid])
        return log.read().decode(errors="replace")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """After an `[oclgrind]` test: Oclgrind's reports fail it, even when its results were right
    (a race often gives the right answer on one run and a wrong one on the next). A `[pocl]`
    run whose `[oclgrind]` twin went out of bounds fails without running."""
    if twin_key(item) in item.config.stash[state_key].out_of_bounds:
        pytest.fail(
            "not run on the real device: on Oclgrind (the [oclgrind] run of this test) its "
            "kernels read or wrote outside a buffer, or reached a barrier in some work-items "
            "only, which on a CPU device can corrupt memory or crash the whole test run. Fix "
            "what that run reports first.",
            pytrace=False,
        )
    try:
        result = yield
    except BaseException as error:
        text = _reports(item)
        if text.strip():
            _fail_with(item, text, error)
        raise
    text = _reports(item)
    if text.strip():
        _fail_with(item, text)
    return result


def _fail_with(item: pytest.Item, text: str, error: BaseException | None = None) -> NoReturn:
    problems = oclgrind_report.parse(text)
    key = twin_key(item)
    # Past a buffer's end, or a barrier only some work-items reach: either can crash a CPU
    # device (heap corruption; PoCL segfaults on a divergent barrier), so the twin is not run.
    unsafe = [problem for problem in problems if problem.kind in ("bounds", "barrier")]
    if key is not None and unsafe:
        item.config.stash[state_key].out_of_bounds.add(key)
    seen = item.config.stash[state_key].unsafe_kernels.setdefault(str(item.path), [])
    for problem in unsafe:
        places = [(a.line, a.source) for a in problem.accesses] or [(problem.line, problem.source)]
        for line, source in places:
            found = UnsafeLine(problem.kernel, line, source, item.name)
            if problem.kernel and not any(found.same_place(known) for known in seen):
                seen.append(found)
    explained = oclgrind_report.explain(problems, text)
    if error is not None:
        explained += f"\n\n(the test itself also failed: {type(error).__name__}: {error})"
    raise pytest.fail.Exception(explained, pytrace=False) from error
