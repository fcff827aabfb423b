"""Kata `fifos`: framed messages through a named pipe between two unrelated processes."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fifos import HEADER, make_fifo, read_exactly, receive_messages, send_messages, write_all

pytestmark = pytest.mark.skipif(
    os.name != "posix" or not hasattr(os, "mkfifo"),
    reason="named pipes (os.mkfifo) exist only on POSIX systems (Linux, macOS, BSD)",
)

# How long a child program may take in all: it exchanges a few hundred KB, in milliseconds.
CHILD_SECONDS = 5.0
# How long a waiting end must keep waiting. A program that does not wait at the open() returns
# within milliseconds of signalling that it is about to call your function.
STILL_WAITING_SECONDS = 0.5
# How long read_exactly may take at end of file: it returns at once there.
END_OF_FILE_SECONDS = 2.0
# Larger than a pipe's buffer (64 KiB on Linux), so no single os.read can return it whole.
BIG = bytes(range(256)) * 800

READER = """
import json, pathlib, sys
import fifos
pathlib.Path(sys.argv[2]).touch()
messages = fifos.receive_messages(sys.argv[1])
print(json.dumps([m.hex() for m in messages]))
"""
WRITER = """
import json, pathlib, sys
import fifos
messages = [bytes.fromhex(h) for h in json.loads(pathlib.Path(sys.argv[3]).read_text())]
pathlib.Path(sys.argv[2]).touch()
fifos.send_messages(sys.argv[1], messages)
"""
# A writer that writes the given bytes (hex in argv[2]) as they are, then closes: it frames
# nothing itself, so it shows what receive_messages makes of exact bytes on the wire.
RAW_WRITER = """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, bytes.fromhex(sys.argv[2]))
os.close(fd)
"""
# A reader that prints, in hex, every byte it reads until end of file.
RAW_READER = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
received = bytearray()
while chunk := os.read(fd, 65536):
    received += chunk
os.close(fd)
print(received.hex())
"""


def framed(*messages: bytes) -> bytes:
    """The bytes send_messages must write for `messages`: each one's length, big-endian in 4
    bytes, then the message (written out with int.to_bytes, not with HEADER)."""
    return b"".join(len(m).to_bytes(4, "big") + m for m in messages)


class Children:
    """Child programs started by a test; each is killed and reaped at the end of the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[subprocess.Popen[str]] = []

    def start(self, code: str, *args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(child)
        return child

    def reader(self, fifo: str, name: str = "reader") -> tuple[subprocess.Popen[str], Path]:
        ready = self.folder / f"{name}.ready"
        return self.start(READER, fifo, str(ready)), ready

    def writer(
        self, fifo: str, messages: list[bytes], name: str = "writer"
    ) -> tuple[subprocess.Popen[str], Path]:
        ready, data = self.folder / f"{name}.ready", self.folder / f"{name}.json"
        data.write_text(json.dumps([m.hex() for m in messages]))
        return self.start(WRITER, fifo, str(ready), str(data)), ready

    def close(self) -> None:
        for child in self.started:
            if child.poll() is None:
                child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.communicate(timeout=CHILD_SECONDS)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    started = Children(tmp_path)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def fifo(tmp_path: Path) -> str:
    """Where the test's FIFO goes; each test makes it with make_fifo first."""
    return str(tmp_path / "channel")


def _finish(child: subprocess.Popen[str], role: str) -> str:
    __tracebackhide__ = True
    try:
        out, err = child.communicate(timeout=CHILD_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        hung = True
    else:
        hung = False
    if hung:
        pytest.fail(
            f"the {role} program did not finish within {CHILD_SECONDS} s: a reader sees end of "
            f"file only when every write end is closed (close the fd in send_messages; a reader "
            f"that opens with O_RDWR holds a write end itself), and a reader that ignores end "
            f"of file (os.read returning b'') never stops"
        )
    assert child.returncode == 0, (
        f"the {role} program failed (exit code {child.returncode}):\n{err}"
    )
    return out


def _wait_for(path: Path, child: subprocess.Popen[str], role: str) -> None:
    __tracebackhide__ = True
    deadline = time.monotonic() + CHILD_SECONDS
    while not path.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the {role} program never got going:\n{child.communicate()[1]}")
        time.sleep(0.01)


def _someone_reads(fifo: str) -> bool:
    """Whether any process holds the FIFO open for reading: only then can a writer open it
    without waiting (otherwise O_NONBLOCK makes the open fail with ENXIO)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:
            return False
        raise
    os.close(fd)
    return True


def _held_here(fifo: str) -> list[int] | None:
    """The file descriptors of this process that are open on the FIFO; None where the system
    cannot list its descriptors (no /dev/fd)."""
    try:
        numbers = [int(name) for name in os.listdir("/dev/fd")]
    except OSError:
        return None
    target = os.stat(fifo)
    held = []
    for fd in numbers:
        with contextlib.suppress(OSError):
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino):
                held.append(fd)
    return held


def _call_in_thread(call: Callable[[], Any], fifo: str, seconds: float = CHILD_SECONDS) -> Any:
    """Run call() in a helper thread and return its result or raise its exception. If it is still
    stuck in open() after `seconds`, open the other end once, so that open() returns."""
    __tracebackhide__ = True
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as error:  # handed to the test's thread below
            outcome["error"] = error

    helper = threading.Thread(target=run, daemon=True)
    helper.start()
    helper.join(seconds)
    if helper.is_alive():
        for flags in (os.O_RDONLY | os.O_NONBLOCK, os.O_WRONLY | os.O_NONBLOCK):
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, flags))
        helper.join(seconds)
        pytest.fail(
            f"the call did not return within {seconds} s although the other program had finished"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _pipe_with(data: bytes, *, close_writer: bool) -> tuple[int, int]:
    """An ordinary pipe already holding `data`; its write end closed (-1) if `close_writer`."""
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    if close_writer:
        os.close(write_end)
        write_end = -1
    return read_end, write_end


def _read_exactly_in_thread(fd: int, count: int) -> tuple[bool, Any]:
    """(returned, what) for read_exactly(fd, count) run in a helper thread for at most
    END_OF_FILE_SECONDS. One that never returns is stopped by swapping the pipe under it for a
    directory, which makes its next os.read fail."""
    __tracebackhide__ = True
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = read_exactly(fd, count)
        except BaseException as error:  # handed to the test's thread below
            outcome["error"] = error

    helper = threading.Thread(target=run, daemon=True)
    helper.start()
    helper.join(END_OF_FILE_SECONDS)
    if helper.is_alive():
        directory = os.open(os.path.dirname(__file__), os.O_RDONLY)
        try:
            os.dup2(directory, fd)
        finally:
            os.close(directory)
        helper.join(CHILD_SECONDS)
        return False, None
    if "error" in outcome:
        raise outcome["error"]
    return True, outcome["result"]


# -- the pieces -------------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_make_fifo_creates_a_named_pipe_only_its_owner_can_open(tmp_path: Path) -> None:
    path = str(tmp_path / "channel")
    make_fifo(path)
    mode = os.stat(path).st_mode
    assert stat.S_ISFIFO(mode), f"{path} is not a FIFO (mode {oct(mode)}): create it with os.mkfifo"
    assert mode & 0o600 == 0o600, (
        f"the owner cannot read and write the FIFO (mode {oct(mode & 0o777)})"
    )
    others = mode & 0o077
    assert others == 0, (
        f"the FIFO's mode is {oct(mode & 0o777)}: its group or everybody may open it too, and "
        f"read what goes through it. os.mkfifo(path) alone gives 0o666 less the umask; pass "
        f"the mode: os.mkfifo(path, 0o600)"
    )


@pytest.mark.clause(2)
def test_make_fifo_refuses_a_path_that_already_exists(tmp_path: Path) -> None:
    path = tmp_path / "channel"
    path.write_bytes(b"somebody's data")
    try:
        make_fifo(str(path))
    except FileExistsError:
        pass
    else:
        pytest.fail(
            f"make_fifo({str(path)!r}) returned although a file already existed there: raise "
            f"FileExistsError (os.mkfifo does that by itself; neither catch it nor remove the "
            f"file first)"
        )
    assert path.is_file() and path.read_bytes() == b"somebody's data", (
        "make_fifo replaced or changed the file that was already there: leave it alone"
    )


@pytest.mark.clause(4)
def test_read_exactly_keeps_reading_across_short_reads() -> None:
    read_end, write_end = os.pipe()
    feeder = threading.Timer(0.05, lambda: os.write(write_end, b"defgh" + b"NEXT"))
    try:
        os.write(write_end, b"abc")
        feeder.start()
        returned, got = _read_exactly_in_thread(read_end, 8)
        feeder.join()
        assert returned, (
            f"read_exactly(fd, 8) did not return within {END_OF_FILE_SECONDS} s, although the "
            f"pipe held 3 bytes and then 9 more: it waits for bytes it does not need. Ask os.read "
            f"for the bytes still missing (count minus what you have), never for more, and stop "
            f"as soon as you have `count`"
        )
        assert len(got) >= 8 and got[:8] == b"abcdefgh", (
            f"read_exactly(fd, 8) returned {got!r}: the pipe held 3 bytes at first and 5 more "
            f"came later; a single os.read returns only what is there (a short read), so keep "
            f"reading until you have 8"
        )
        assert got == b"abcdefgh", (
            f"read_exactly(fd, 8) returned {len(got)} bytes, {got!r}: it read into the bytes "
            f"that follow. Ask os.read for the bytes still missing (count minus what you have), "
            f"not for `count` bytes each time"
        )
        os.set_blocking(read_end, False)
        assert os.read(read_end, 100) == b"NEXT", "the bytes after the 8 must stay in the pipe"
    finally:
        feeder.cancel()
        if feeder.is_alive():
            feeder.join()
        os.close(read_end)
        os.close(write_end)


@pytest.mark.clause(5)
def test_read_exactly_returns_what_it_got_when_the_writer_is_gone() -> None:
    read_end, _ = _pipe_with(b"abc", close_writer=True)
    try:
        returned, got = _read_exactly_in_thread(read_end, 8)
        assert returned, (
            f"read_exactly(fd, 8) did not return within {END_OF_FILE_SECONDS} s although the "
            f"writer had closed its end after 3 bytes: at end of file os.read returns b'' "
            f"again and again; stop reading when it does"
        )
        assert got == b"abc", (
            f"read_exactly(fd, 8) returned {got!r} when the writer closed after b'abc': at end "
            f"of file return the bytes you got, so that the caller can tell a cut frame from a "
            f"clean end"
        )
        returned, got = _read_exactly_in_thread(read_end, 4)
        assert returned and got == b"", (
            f"read_exactly(fd, 4) at end of file with nothing left gave {got!r}, not b''"
        )
    finally:
        os.close(read_end)


@pytest.mark.clause(3)
def test_write_all_writes_every_byte() -> None:
    read_end, write_end = os.pipe()
    try:
        received: list[bytes] = []
        drain = threading.Thread(
            target=lambda: received.append(b"".join(iter(lambda: os.read(read_end, 65536), b"")))
        )
        drain.start()
        try:
            write_all(write_end, BIG)
        finally:
            os.close(write_end)
            drain.join(CHILD_SECONDS)
        assert received == [BIG], (
            f"the pipe delivered {len(received[0]) if received else 0} of {len(BIG)} bytes: keep "
            f"calling os.write with the rest until every byte is written"
        )
    finally:
        os.close(read_end)


@pytest.mark.clause(3)
def test_write_all_goes_on_after_a_short_write(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = 1000
    real_write = os.write
    calls: list[int] = []

    def short_write(fd: int, data: Any) -> int:
        # What os.write may do on a pipe (a signal, a full non-blocking pipe): take only part.
        calls.append(len(data))
        return real_write(fd, bytes(data[:taken]))

    data = bytes(range(256)) * 20  # 5120 bytes: fits in the pipe, needs six short writes
    read_end, write_end = os.pipe()
    try:
        monkeypatch.setattr(os, "write", short_write)
        try:
            write_all(write_end, data)
        finally:
            monkeypatch.undo()
            os.close(write_end)
        os.set_blocking(read_end, False)
        received = b"".join(iter(lambda: os.read(read_end, 65536), b""))
    finally:
        os.close(read_end)
    arrived = len(received)
    assert arrived >= len(data), (
        f"os.write took only {taken} bytes per call ({len(calls)} call(s)) and {arrived} of "
        f"{len(data)} bytes arrived: os.write returns how many bytes it took; call it again "
        f"with the rest until nothing is left"
    )
    assert received == data, (
        f"{arrived} bytes arrived for {len(data)} written, in a different order: after a "
        f"short write, write the bytes not written yet (data[written:]), not `data` again"
    )


# -- two unrelated processes ------------------------------------------------------------------


@pytest.mark.clause(7, 10)
def test_a_writer_program_and_a_reader_program_exchange_messages(
    fifo: str, children: Children
) -> None:
    make_fifo(fifo)
    messages = [b"hello", b"", b"through the pipe", bytes(range(256))]
    reader, _ = children.reader(fifo)
    writer, _ = children.writer(fifo, messages)
    _finish(writer, "writer")
    got = [bytes.fromhex(h) for h in json.loads(_finish(reader, "reader"))]
    assert got == messages, (
        f"the reader program received {got!r}, the writer sent {messages!r}: each message is a "
        f"4-byte length and its bytes; an empty message is a message, not the end (the end is "
        f"end of file)"
    )


@pytest.mark.clause(4, 10)
def test_a_message_larger_than_the_pipe_buffer_arrives_whole(fifo: str, children: Children) -> None:
    make_fifo(fifo)
    messages = [b"before", BIG, b"after"]
    reader, _ = children.reader(fifo)
    writer, _ = children.writer(fifo, messages)
    _finish(writer, "writer")
    got = [bytes.fromhex(h) for h in json.loads(_finish(reader, "reader"))]
    assert [len(m) for m in got] == [len(m) for m in messages] and got == messages, (
        f"the reader received messages of {[len(m) for m in got]} bytes, the writer sent "
        f"{[len(m) for m in messages]}: a pipe holds 64 KiB, so one os.read never returns the "
        f"{len(BIG)}-byte message whole (B2's reader reads a fixed 22 bytes); loop in read_exactly"
    )


@pytest.mark.clause(9)
def test_a_reader_waits_at_the_open_until_a_writer_comes(fifo: str, children: Children) -> None:
    make_fifo(fifo)
    reader, ready = children.reader(fifo)
    _wait_for(ready, reader, "reader")
    time.sleep(STILL_WAITING_SECONDS)
    assert reader.poll() is None, (
        f"with no writer yet, the reader program ended after {STILL_WAITING_SECONDS} s "
        f"(exit code {reader.returncode}) instead of waiting: os.open(path, os.O_RDONLY) blocks "
        f"until a writer opens the FIFO; O_NONBLOCK would read an empty stream at once"
    )
    writer, _ = children.writer(fifo, [b"late but here"])
    _finish(writer, "writer")
    assert json.loads(_finish(reader, "reader")) == [b"late but here".hex()], (
        "the waiting reader got the wrong messages"
    )


@pytest.mark.clause(6)
def test_a_writer_waits_at_the_open_until_a_reader_comes(fifo: str, children: Children) -> None:
    make_fifo(fifo)
    writer, ready = children.writer(fifo, [b"patient"])
    _wait_for(ready, writer, "writer")
    time.sleep(STILL_WAITING_SECONDS)
    assert writer.poll() is None, (
        f"with no reader yet, the writer program ended after {STILL_WAITING_SECONDS} s "
        f"(exit code {writer.returncode}) instead of waiting: os.open(path, os.O_WRONLY) blocks "
        f"until a reader opens the FIFO (O_NONBLOCK fails with ENXIO; O_RDWR does not wait, "
        f"and what it writes is lost when it closes before a reader came)"
    )
    reader, _ = children.reader(fifo)
    _finish(writer, "writer")
    assert json.loads(_finish(reader, "reader")) == [b"patient".hex()], (
        "the reader got the wrong messages"
    )


# -- the bytes on the wire --------------------------------------------------------------------


@pytest.mark.clause(7)
def test_send_messages_puts_a_big_endian_length_before_each_message(
    fifo: str, children: Children
) -> None:
    make_fifo(fifo)
    messages = [b"one", b"", b"x" * 300]
    raw = children.start(RAW_READER, fifo)
    _call_in_thread(lambda: send_messages(fifo, messages), fifo)
    wire = bytes.fromhex(_finish(raw, "raw reader").strip())
    expected = framed(*messages)
    assert wire == expected, (
        f"for the messages {[m[:8] for m in messages]} (lengths 3, 0, 300) the FIFO carried "
        f"{wire[:16].hex(' ')}... ({len(wire)} bytes), expected {expected[:16].hex(' ')}... "
        f"({len(expected)} bytes): before each message write HEADER.pack(len(message)), its "
        f"length in 4 big-endian bytes (300 is 00 00 01 2c), then the message itself"
    )


@pytest.mark.clause(10)
def test_receive_messages_reads_the_frames_another_program_wrote(
    fifo: str, children: Children
) -> None:
    make_fifo(fifo)
    messages = [b"abc", b"", b"y" * 300, b"z"]
    writer = children.start(RAW_WRITER, fifo, framed(*messages).hex())
    got = _call_in_thread(lambda: receive_messages(fifo), fifo)
    _finish(writer, "raw writer")
    assert got == messages, (
        f"another program wrote the frames of {[m[:8] for m in messages]} (lengths 3, 0, 300, "
        f"1; each length in 4 big-endian bytes, like HEADER) and receive_messages returned "
        f"{[m[:8] for m in got]} (lengths {[len(m) for m in got]}): read HEADER.size bytes, "
        f"(length,) = HEADER.unpack(header), then exactly `length` bytes; an empty message "
        f"is a message"
    )


# -- descriptors and broken streams -----------------------------------------------------------


@pytest.mark.clause(12)
def test_receive_messages_closes_the_fifo_when_it_returns(fifo: str, children: Children) -> None:
    make_fifo(fifo)
    writer = children.start(RAW_WRITER, fifo, framed(b"only one").hex())
    got = _call_in_thread(lambda: receive_messages(fifo), fifo)
    _finish(writer, "raw writer")
    assert got == [b"only one"], f"receive_messages returned {got!r}, not [b'only one']"
    held = _held_here(fifo)
    reading = _someone_reads(fifo) if held is None else bool(held)
    assert not reading, (
        f"receive_messages returned but this process still holds the FIFO open (descriptors "
        f"{held}): close the descriptor before returning, in a finally block"
    )


@pytest.mark.clause(11, 12)
def test_a_stream_cut_inside_a_message_raises_eof_error_and_closes_the_fifo(
    fifo: str, children: Children
) -> None:
    make_fifo(fifo)
    # A header for 100 bytes, then only 10 of them: the writer died in the middle.
    cut = children.start(RAW_WRITER, fifo, (HEADER.pack(100) + b"x" * 10).hex())
    try:
        messages = _call_in_thread(lambda: receive_messages(fifo), fifo)
    except EOFError:
        pass
    else:
        pytest.fail(
            f"the writer died after 10 of the 100 bytes it announced, and receive_messages "
            f"returned {messages!r}: a frame cut short by end of file is an error, raise EOFError"
        )
    _finish(cut, "cut writer")
    assert not _someone_reads(fifo), (
        "after receive_messages raised, this process still held the FIFO open for reading: "
        "close the descriptor in a finally block, so an error cannot skip it"
    )


@pytest.mark.clause(11)
def test_a_stream_cut_inside_a_header_raises_eof_error(fifo: str, children: Children) -> None:
    make_fifo(fifo)
    # One whole message, then 2 of the 4 bytes of the next header.
    cut = children.start(RAW_WRITER, fifo, (framed(b"whole") + HEADER.pack(7)[:2]).hex())
    try:
        messages = _call_in_thread(lambda: receive_messages(fifo), fifo)
    except EOFError:
        pass
    else:
        pytest.fail(
            f"the writer died after 2 of the 4 bytes of a header, and receive_messages returned "
            f"{messages!r} as if the stream had ended cleanly: only a read that gets no byte at "
            f"all (b'') is the end; a header shorter than HEADER.size means EOFError"
        )
    _finish(cut, "cut writer")


@pytest.mark.clause(8)
def test_send_messages_closes_the_fifo_so_the_reader_sees_the_end(
    fifo: str, children: Children
) -> None:
    make_fifo(fifo)
    raw = children.start(RAW_READER, fifo)
    _call_in_thread(lambda: send_messages(fifo, [b"one", b"two"]), fifo)
    held = _held_here(fifo)
    assert not held, (
        f"send_messages returned but this process still holds the FIFO open (descriptors "
        f"{held}): the reader sees end of file only when every write end is closed; close it"
    )
    wire = bytes.fromhex(_finish(raw, "raw reader").strip())
    assert len(wire) == 2 * HEADER.size + 6, (
        f"the reader got {len(wire)} bytes, expected {2 * HEADER.size + 6} (two headers and six "
        f"bytes)"
    )


@pytest.mark.clause(8)
def test_send_messages_closes_the_fifo_when_writing_fails(fifo: str, children: Children) -> None:
    make_fifo(fifo)
    raw = children.start(RAW_READER, fifo)
    # The second message is a str, not bytes: writing it fails with TypeError.
    bad: list[Any] = [b"fine", "not bytes"]
    try:
        _call_in_thread(lambda: send_messages(fifo, bad), fifo)
    except TypeError:
        pass
    else:
        pytest.fail("send_messages wrote a str message without complaint; it takes bytes only")
    held = _held_here(fifo)
    assert not held, (
        f"send_messages raised TypeError and left the FIFO open (descriptors {held}): the "
        f"reader now waits for end of file forever. Close the fd in a finally block"
    )
    _finish(raw, "raw reader")
