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
# A writer that dies in the middle of a message: a header for 100 bytes, then only 10.
CUT_WRITER = """
import os, struct, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, struct.pack(">I", 100) + b"x" * 10)
os.close(fd)
"""
# A reader that counts the bytes until end of file.
COUNTING_READER = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
total = 0
while chunk := os.read(fd, 65536):
    total += len(chunk)
os.close(fd)
print(total)
"""


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
        child.communicate()
        pytest.fail(
            f"the {role} program did not finish within {CHILD_SECONDS} s: a reader sees end of "
            f"file only when every write end is closed (close the fd in send_messages), and a "
            f"reader that ignores end of file (os.read returning b'') never stops"
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


# -- the pieces -------------------------------------------------------------------------------


def test_make_fifo_creates_a_named_pipe_for_its_owner(tmp_path: Path) -> None:
    path = str(tmp_path / "channel")
    make_fifo(path)
    mode = os.stat(path).st_mode
    assert stat.S_ISFIFO(mode), f"{path} is not a FIFO (mode {oct(mode)}): create it with os.mkfifo"
    assert mode & 0o600 == 0o600, (
        f"the owner cannot read and write the FIFO (mode {oct(mode & 0o777)})"
    )


def test_read_exactly_keeps_reading_across_short_reads() -> None:
    read_end, write_end = os.pipe()
    feeder = threading.Timer(0.05, lambda: os.write(write_end, b"defgh"))
    try:
        os.write(write_end, b"abc")
        feeder.start()
        got = read_exactly(read_end, 8)
        feeder.join()
        assert got == b"abcdefgh", (
            f"read_exactly(fd, 8) returned {got!r}: the pipe held 3 bytes at first and 5 more came "
            f"later; a single os.read returns only what is there (a short read), so keep reading"
        )
        os.close(write_end)
        write_end = -1
        assert read_exactly(read_end, 4) == b"", "at end of file with nothing read, return b''"
    finally:
        feeder.cancel()
        if feeder.is_alive():
            feeder.join()
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


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


# -- two unrelated processes ------------------------------------------------------------------


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


def test_a_writer_waits_at_the_open_until_a_reader_comes(fifo: str, children: Children) -> None:
    make_fifo(fifo)
    writer, ready = children.writer(fifo, [b"patient"])
    _wait_for(ready, writer, "writer")
    time.sleep(STILL_WAITING_SECONDS)
    assert writer.poll() is None, (
        f"with no reader yet, the writer program ended after {STILL_WAITING_SECONDS} s "
        f"(exit code {writer.returncode}) instead of waiting: os.open(path, os.O_WRONLY) blocks "
        f"until a reader opens the FIFO (O_NONBLOCK fails with ENXIO)"
    )
    reader, _ = children.reader(fifo)
    _finish(writer, "writer")
    assert json.loads(_finish(reader, "reader")) == [b"patient".hex()], (
        "the reader got the wrong messages"
    )


# -- descriptors and broken streams -----------------------------------------------------------


def test_a_stream_cut_inside_a_message_raises_eof_error_and_closes_the_fifo(
    fifo: str, children: Children
) -> None:
    make_fifo(fifo)
    cut = children.start(CUT_WRITER, fifo)
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


def test_send_messages_closes_the_fifo_so_the_reader_sees_the_end(
    fifo: str, children: Children
) -> None:
    make_fifo(fifo)
    counter = children.start(COUNTING_READER, fifo)
    _call_in_thread(lambda: send_messages(fifo, [b"one", b"two"]), fifo)
    total = _finish(counter, "counting reader")
    expected = 2 * HEADER.size + 6
    assert int(total) == expected, (
        f"the reader counted {total.strip()} bytes, expected {expected} (two headers and six bytes)"
    )
