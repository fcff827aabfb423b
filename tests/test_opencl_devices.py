"""The OpenCL plugin (plugins/opencl_devices.py): a test taking `cl_queue` runs on the real device
and on Oclgrind, and on Oclgrind every race or out-of-bounds access in its kernels fails it, with
the work-items and the source lines named, even when the numbers come out right."""

from __future__ import annotations

import pytest

from plugins.backends import BACKENDS
from plugins.opencl_devices import oclgrind_library
from tests.kata_repo import KataRepo

pytestmark = pytest.mark.skipif(
    BACKENDS["opencl"].detect() is not None or oclgrind_library() is None,
    reason=f"needs {BACKENDS['opencl'].description}: {BACKENDS['opencl'].how_to_get}",
)

KERNELS = '''
import numpy as np
import pyopencl as cl

SOURCE = """
__kernel void block_sum(__global const float *x, __global float *out, __local float *tmp) {
    int l = get_local_id(0);
    tmp[l] = x[get_global_id(0)];
    BARRIER_1
    for (int s = get_local_size(0) / 2; s > 0; s >>= 1) {
        if (l < s) tmp[l] += tmp[l + s];
        BARRIER_2
    }
    if (l == 0) out[get_group_id(0)] = tmp[0];
}
__kernel void fill(__global float *a, int n) {
    int i = get_global_id(0);
    GUARD a[i] = 1.0f;
}
"""
BARRIER = "barrier(CLK_LOCAL_MEM_FENCE);"


def block_sums(queue, x, barriers=True):
    source = SOURCE.replace("BARRIER_1", BARRIER if barriers else "").replace(
        "BARRIER_2", BARRIER if barriers else "").replace("GUARD", "if (i < n)")
    program = cl.Program(queue.context, source).build()
    flags = cl.mem_flags
    x_buffer = cl.Buffer(queue.context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=x)
    out = np.zeros(len(x) // 8, np.float32)
    out_buffer = cl.Buffer(queue.context, flags.WRITE_ONLY, out.nbytes)
    program.block_sum(queue, (len(x),), (8,), x_buffer, out_buffer, cl.LocalMemory(32))
    cl.enqueue_copy(queue, out, out_buffer)
    return out


def fill(queue, n, guarded=True):
    source = SOURCE.replace("BARRIER_1", "").replace("BARRIER_2", "").replace(
        "GUARD", "if (i < n)" if guarded else "")
    program = cl.Program(queue.context, source).build()
    # One float of slack past n: an unguarded write lands inside the allocation on a real device.
    a_buffer = cl.Buffer(queue.context, cl.mem_flags.READ_WRITE, 4 * n)
    program.fill(queue, (n + 1,), None, a_buffer, np.int32(n))
    a = np.zeros(n, np.float32)
    cl.enqueue_copy(queue, a, a_buffer)
    return a
'''

TESTS = """
import numpy as np
from kernels import block_sums, fill


def test_block_sums_with_barriers(cl_queue):
    x = np.arange(16, dtype=np.float32)
    assert list(block_sums(cl_queue, x)) == [28.0, 92.0]


def test_block_sums_without_barriers(cl_queue):
    x = np.ones(16, dtype=np.float32)
    block_sums(cl_queue, x, barriers=False)


def test_fill_guarded(cl_queue):
    assert fill(cl_queue, 10).sum() == 10


def test_fill_unguarded(cl_queue):
    fill(cl_queue, 10, guarded=False)


def test_fill_unguarded_again(cl_queue):
    # Oclgrind truncates its log at each new context: this test's reports are no longer than
    # the last test's, and must still be seen.
    fill(cl_queue, 10, guarded=False)


def test_real_device_only(pocl_queue):
    assert "Oclgrind" not in pocl_queue.device.platform.name


def test_buffers_have_room_past_their_end_on_the_real_device_only(cl_queue):
    import pyopencl as cl

    flags = cl.mem_flags
    made = cl.Buffer(cl_queue.context, flags.READ_WRITE, 40)
    copied = cl.Buffer(cl_queue.context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=np.arange(10, dtype=np.float32))
    back = np.zeros(10, np.float32)
    cl.enqueue_copy(cl_queue, back, copied)
    assert made.size == copied.size == 40 and list(back) == list(range(10))
    real = made.get_info(cl.mem_info.SIZE)
    on_oclgrind = "Oclgrind" in cl_queue.device.platform.name
    assert real == 40 if on_oclgrind else real >= 40 + 65536, real
"""


def test_oclgrind_fails_races_and_out_of_bounds_writes_that_the_real_device_lets_through(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/kernels.py", KERNELS)
    kata_repo.write("katas/adder/test_adder.py", TESTS)
    result = kata_repo.run("katas/adder", "-p", "no:randomly", "-rA", timeout=120)
    # The missing barriers go unnoticed on PoCL (no wrong number is asserted) and fail on
    # Oclgrind. The unguarded write fails on Oclgrind, which runs first, and is then not run on
    # PoCL, where writing past a buffer corrupts the heap.
    result.assert_outcomes(passed=8, failed=5)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "FAILED*test_block_sums_without_barriers?oclgrind?*",
            "FAILED*test_fill_unguarded?oclgrind?*",
            "FAILED*test_fill_unguarded_again?oclgrind?*",
            "FAILED*test_fill_unguarded?pocl? - Failed: not run*",
        ]
    )
    assert "not run on the real device: on Oclgrind (the [oclgrind] run" in output, output
    assert "Read-write data race in kernel `block_sum` (local memory" in output, output
    assert "at line 4: `tmp[l] = x[get_global_id(0)];`" in output, output
    assert "barrier(CLK_LOCAL_MEM_FENCE) after the step that writes" in output, output
    assert "Invalid write of size 4 in kernel `fill` (global memory, byte 40" in output, output
    assert "work-item 10 (local 0 of group 10)" in output, output
    assert "guard the body with `if (i < n)`" in output, output
    # Oclgrind's own log follows the explanation, whole blocks from their first line.
    assert "own report (first part):\n\nRead-write data race at local memory" in output, output
    assert "own report (first part):\n\nInvalid write of size 4 at global memory" in output, output
    result.stdout.fnmatch_lines(["*OpenCL platforms: *Oclgrind*Portable Computing Language*"])


def test_without_oclgrind_its_runs_are_skipped_with_how_to_get_it_or_fail_when_required(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    kata_repo.write("katas/adder/kernels.py", KERNELS)
    kata_repo.write("katas/adder/test_adder.py", TESTS)
    monkeypatch.setenv("KATA_OCLGRIND_ICD", "/nonexistent/oclgrind.so")
    result = kata_repo.run("katas/adder", "-p", "no:randomly", "-rs", timeout=120)
    result.assert_outcomes(passed=7, skipped=6)
    result.stdout.fnmatch_lines(
        ["*Oclgrind is not available here: install the Oclgrind*apt-get install oclgrind*"]
    )
    required = kata_repo.run(
        "katas/adder", "-p", "no:randomly", "--kata-require=opencl", timeout=120
    )
    required.assert_outcomes(passed=7, errors=6)
    required.stdout.fnmatch_lines(["*required by --kata-require=opencl but absent: Oclgrind*"])


DIVERGENT = '''
import numpy as np
import pyopencl as cl

SOURCE = """
__kernel void divergent(__global float *a) {
    int l = get_local_id(0);
    if (l < 4) { barrier(CLK_LOCAL_MEM_FENCE); }
    a[get_global_id(0)] = l;
}
__kernel void plain(__global float *a) { a[get_global_id(0)] = 2.0f; }
"""


def run(queue, name):
    program = cl.Program(queue.context, SOURCE).build()
    out = np.zeros(16, np.float32)
    buffer = cl.Buffer(queue.context, cl.mem_flags.WRITE_ONLY, out.nbytes)
    getattr(program, name)(queue, (16,), (8,), buffer)
    cl.enqueue_copy(queue, out, buffer)
    return out
'''

DIVERGENT_TESTS = """
from kernels import run


def test_divergent_on_the_real_device_only(pocl_queue):
    run(pocl_queue, "divergent")


def test_plain_on_the_real_device_only(pocl_queue):
    assert run(pocl_queue, "plain").sum() == 32


def test_divergent_on_both(cl_queue):
    run(cl_queue, "divergent")
"""


def test_a_kernel_oclgrind_saw_diverge_at_a_barrier_is_never_launched_on_the_real_device(
    kata_repo: KataRepo,
) -> None:
    # PoCL segfaults on a barrier that only some work-items reach, which would end the whole
    # run with no report. The file's [oclgrind] runs go first, even before tests that come
    # earlier in the file, and what they find unsafe is refused on the real device.
    kata_repo.write("katas/adder/kernels.py", DIVERGENT)
    kata_repo.write("katas/adder/test_adder.py", DIVERGENT_TESTS)
    result = kata_repo.run("katas/adder", "-p", "no:randomly", "-rA", timeout=120)
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(
        [
            "FAILED*test_divergent_on_both?oclgrind?*",
            "FAILED*test_divergent_on_the_real_device_only - Fa*",
            "FAILED*test_divergent_on_both?pocl? - Failed: not*",
        ]
    )
    assert (
        "kernel `divergent` was not launched on the real device: on Oclgrind (in "
        "test_divergent_on_both[oclgrind]) it read or wrote outside a buffer, or reached a "
        "barrier in some work-items only, at line 4: `if (l < 4) { barrier(CLK_LOCAL_MEM_FENCE); }`"
    ) in result.stdout.str(), result.stdout.str()
