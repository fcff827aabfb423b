"""The Numba plugin (plugins/numba_sim.py): CUDA kernels run on Numba's simulator, and in the
tests it checks, a shared or global memory race, a read of shared memory no thread wrote, or a
barrier only part of a block reaches fails the test with the threads and the source lines, even
when the numbers come out right; elsewhere the simulator runs untouched."""

from __future__ import annotations

import re

import pytest

from plugins.backends import BACKENDS
from tests.kata_repo import KataRepo

pytestmark = pytest.mark.skipif(
    BACKENDS["numba"].detect() is not None,
    reason=f"needs {BACKENDS['numba'].description}: {BACKENDS['numba'].how_to_get}",
)

KERNELS = """
from numba import cuda, float32, int32

TPB = 32


@cuda.jit
def block_sums(x, out, barriers, pad):
    tile = cuda.shared.array(TPB, dtype=float32)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    if i < x.size:
        tile[t] = x[i]
    elif pad:
        tile[t] = 0
    if barriers:
        cuda.syncthreads()
    s = TPB // 2
    while s > 0:
        if t < s:
            tile[t] += tile[t + s]
        if barriers:
            cuda.syncthreads()
        s //= 2
    if t == 0:
        out[cuda.blockIdx.x] = tile[0]


@cuda.jit
def reverse(x, out):
    tile = cuda.shared.array(TPB, dtype=float32)
    t = cuda.threadIdx.x
    tile[t] = x[t]
    cuda.syncthreads()
    out[t] = tile[TPB - 1 - t]
    cuda.syncthreads()
    tile[t] = 0  # an element another thread read, one barrier earlier


@cuda.jit
def count(out):
    hits = cuda.shared.array(1, dtype=int32)
    if cuda.threadIdx.x == 0:
        hits[0] = 0
    cuda.syncthreads()
    cuda.atomic.add(hits, 0, 1)
    cuda.syncthreads()
    if cuda.threadIdx.x == 0:
        cuda.atomic.add(out, 0, hits[0])


@cuda.jit
def transpose(a, out):
    tile = cuda.shared.array((8, 8), dtype=float32)
    r, c = cuda.threadIdx.y, cuda.threadIdx.x
    tile[r][c] = a[r, c]
    cuda.syncthreads()
    out[r, c] = tile[c][r]


@cuda.jit
def copy(x, out, stride_by_block):
    stride = cuda.blockDim.x if stride_by_block else cuda.gridsize(1)
    for i in range(cuda.grid(1), x.size, stride):
        out[i] = x[i]


@cuda.jit
def divergent(out):
    t = cuda.threadIdx.x
    if t < 4:
        cuda.syncthreads()
    out[cuda.grid(1)] = t
"""

TESTS = """
import time

import numpy as np
import pytest
from numba import cuda
from numba.cuda.simulator import kernel as simulator
from kernels import block_sums, copy, count, divergent, reverse, transpose

STOCK = simulator.BlockManager.run


def sums(barriers=True, pad=True):
    x = np.arange(100, dtype=np.float32)
    out = np.zeros(4, np.float32)
    block_sums[4, 32](x, out, barriers, pad)
    return out


@pytest.mark.numba
def test_sums_with_barriers():
    assert list(sums()) == [496.0, 1520.0, 2544.0, 390.0]


@pytest.mark.numba
def test_sums_without_barriers():
    sums(barriers=False)


def test_sums_without_barriers_unchecked():
    sums(barriers=False)
    assert simulator.BlockManager.run is STOCK, "the simulator was left patched"


@pytest.mark.numba
def test_sums_unpadded():
    sums(pad=False)


def test_barriers_in_other_epochs_and_atomics_are_no_race(cuda_races):
    x = np.arange(32, dtype=np.float32)
    out = np.zeros(32, np.float32)
    reverse[1, 32](x, out)
    assert list(out) == list(x[::-1])
    hits = np.zeros(1, np.int32)
    count[3, 32](hits)
    assert hits[0] == 96
    a = np.arange(64, dtype=np.float32).reshape(8, 8)
    b = np.zeros_like(a)
    transpose[1, (8, 8)](a, b)
    assert (b == a.T).all()
    y = np.zeros(100, np.float32)
    copy[2, 32](np.arange(100, dtype=np.float32), y, False)
    assert (y == np.arange(100)).all()
    assert cuda_races.active and cuda_races.launches == 4 and not cuda_races.problems


@pytest.mark.numba
def test_copy_strided_by_block():
    y = np.zeros(100, np.float32)
    copy[2, 32](np.arange(100, dtype=np.float32), y, True)
    assert (y == np.arange(100)).all()


def test_divergent(cuda_races):
    start = time.monotonic()
    try:
        divergent[2, 8](np.zeros(16, np.float32))
    finally:
        print(f"ELAPSED {time.monotonic() - start:.3f}")
"""


def line_of(text: str) -> int:
    """The line of KERNELS that holds `text` (the kernel file has the same lines)."""
    lines = KERNELS.lstrip("\n").splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def test_races_uninitialized_reads_and_divergent_barriers_fail_checked_tests_only(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/kernels.py", KERNELS)
    kata_repo.write("katas/adder/test_adder.py", TESTS)
    result = kata_repo.run("katas/adder", "-p", "no:randomly", "-rA", timeout=120)
    output = result.stdout.str()
    result.assert_outcomes(passed=3, failed=4)
    result.stdout.fnmatch_lines(
        [
            "numba: CUDA kernels run on Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)*",
            "PASSED*test_sums_with_barriers",
            "PASSED*test_sums_without_barriers_unchecked",
            "PASSED*test_barriers_in_other_epochs_and_atomics_are_no_race",
            "FAILED*test_sums_without_barriers - *",
            "FAILED*test_sums_unpadded - *",
            "FAILED*test_copy_strided_by_block - *",
            "FAILED*test_divergent - *",
        ]
    )
    # The missing barrier after the stores: the reader, the writer, both lines, the advice.
    # (The threads run one at a time: thread 0 runs its whole tree before thread 1 stores.)
    store, add = line_of("tile[t] = x[i]"), line_of("tile[t] += tile[t + s]")
    assert re.search(
        r"kernel `block_sums` \(launch 1 in this test\): data race on shared array `tile` "
        r"\(shared memory\): thread \(0,0,0\) of block \(0,0,0\) reads tile\[1\] at "
        rf"kernels\.py:{add} \(`tile\[t\] \+= tile\[t \+ s\]`\) while thread \(1,0,0\) of the "
        rf"same block writes it at kernels\.py:{store} \(`tile\[t\] = x\[i\]`\), with no "
        r"cuda\.syncthreads\(\) between them: add one after the stores",
        output,
    ), output
    assert "put one after the step that writes (`tile[t] = x[i]`" in output, output
    # Threads past the end store nothing, and the tree reads what no thread wrote.
    assert re.search(
        r"thread \(0,0,0\) of block \(3,0,0\) reads tile\[\d+\] at kernels\.py:"
        rf"{add} .*which no thread of its block had written",
        output,
    ), output
    assert "store a neutral value (0 for a sum) instead of returning" in output, output
    # A stride of one block: both blocks write every element from the second block's start.
    assert re.search(
        r"data race on `out` \(global memory\): thread \(0,0,0\) of block \(0,0,0\) writes "
        r"out\[32\] .* while thread \(0,0,0\) of block \(1,0,0\) writes it .*nothing orders "
        r"two blocks",
        output,
    ), output
    assert "steps by cuda.gridsize(1)" in output, output
    # The barrier that threads 4..7 never reach: raised at once, and reported after the test.
    barrier = line_of("if t < 4:") + 1
    assert "kernel `divergent` (launch 1 in this test): in block (0,0,0)" in output, output
    assert re.search(
        r"in block \(0,0,0\), threads \(0,0,0\), \(1,0,0\), \(2,0,0\), \(3,0,0\) wait at "
        rf"cuda\.syncthreads\(\) at kernels\.py:{barrier} .*while threads \(4,0,0\), "
        r"\(5,0,0\), \(6,0,0\), \(7,0,0\) ended \(returned\) without reaching it",
        output,
    ), output
    elapsed = [float(seconds) for seconds in re.findall(r"ELAPSED (\d+\.\d+)", output)]
    assert elapsed and elapsed[0] < 5, f"the divergent launch took {elapsed} s: {output}"


def test_a_real_gpu_is_named_in_the_header_and_turns_the_checker_off(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    kata_repo.write(
        "katas/adder/test_adder.py",
        """
        import os


        def test_checker_is_off(cuda_races):
            assert not cuda_races.active
            assert os.environ["NUMBA_ENABLE_CUDASIM"] == "0"
        """,
    )
    monkeypatch.setenv("KATA_NUMBA_GPU", "1")
    result = kata_repo.run("katas/adder", "-p", "no:randomly", timeout=60)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["numba: CUDA kernels run on the real GPU (KATA_NUMBA_GPU=1); the simulator's race*"]
    )
