"""Benchmark: the reference tree reduction (katas/opencl_reduction) on the real OpenCL device
against `numpy.sum` on the same float32 array.

    python -m plugins.opencl_bench [--n 16777216] [--local-sizes 64,256,1024] [--repeats 5]

prints one line per work-group size: the kernel time of one `block_sums` pass (from its
profiling events, so copies are left out) as GB/s of input, the wall time of the whole
`total` (copies and every pass), and pyopencl's own `ReductionKernel` sum; then `numpy.sum`.
Each figure is the best of `--repeats`. The device is chosen as the tests choose it
(PYOPENCL_CTX, else the first device that is not Oclgrind).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from plugins.opencl_devices import find_real_device

REFERENCE = (
    Path(__file__).resolve().parent.parent
    / "reference"
    / "opencl_reduction"
    / "opencl_reduction.py"
)


def _reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("opencl_reduction_reference", REFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _best(repeats: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeats))


def _wall(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _kernel_seconds(queue: Any, reference: ModuleType, x: Any, local_size: int) -> float:
    """One `block_sums` pass's kernel time, from its profiling events."""
    import numpy as np
    import pyopencl as cl

    groups = (x.size + local_size - 1) // local_size
    flags = cl.mem_flags
    x_buffer = cl.Buffer(queue.context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=x)
    sums_buffer = cl.Buffer(queue.context, flags.WRITE_ONLY, 4 * groups)
    kernel = cl.Kernel(reference._program(queue.context), "block_sums")
    event = kernel(
        queue,
        (groups * local_size,),
        (local_size,),
        x_buffer,
        np.int32(x.size),
        sums_buffer,
        cl.LocalMemory(4 * local_size),  # type: ignore[arg-type]  # (missing from its hints)
    )
    event.wait()
    return float(event.profile.end - event.profile.start) * 1e-9


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1 << 24, help="float32 numbers (default 2**24)")
    parser.add_argument("--local-sizes", default="64,256,1024", help="work-group sizes")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure; the best counts")
    args = parser.parse_args()

    import numpy as np
    import pyopencl as cl
    import pyopencl.array as cl_array

    device = find_real_device(os.environ.get("PYOPENCL_CTX", ""))
    queue = cl.CommandQueue(
        cl.Context([device]), properties=cl.command_queue_properties.PROFILING_ENABLE
    )
    reference = _reference()
    x = np.random.default_rng(0).random(args.n, dtype=np.float32)
    gigabytes = x.nbytes / 1e9
    print(
        f"device: {device.platform.name} / {device.name}; {args.n} float32 ({x.nbytes >> 20} MiB)"
    )
    numpy_seconds = _best(args.repeats, lambda: _wall(lambda: np.sum(x)))
    limit = device.max_work_group_size
    for local_size in (int(size) for size in args.local_sizes.split(",")):
        if local_size > limit:
            print(f"local size {local_size:5}: skipped, above this device's {limit}")
            continue
        one_pass = functools.partial(_kernel_seconds, queue, reference, x, local_size)
        whole_sum = functools.partial(reference.total, queue, x, local_size)
        kernel = _best(args.repeats, one_pass)
        whole = _best(args.repeats, functools.partial(_wall, whole_sum))
        print(
            f"local size {local_size:5}: block_sums kernel {gigabytes / kernel:6.2f} GB/s "
            f"({kernel * 1e3:7.2f} ms, {numpy_seconds / kernel:.3f}x numpy.sum); "
            f"total with copies {whole * 1e3:7.2f} ms"
        )
    on_device = cl_array.to_device(queue, x)
    library = _best(args.repeats, lambda: _wall(lambda: cl_array.sum(on_device).get()))
    print(
        f"pyopencl.array.sum (ReductionKernel): {gigabytes / library:6.2f} GB/s ({library * 1e3:7.2f} ms)"
    )
    print(
        f"numpy.sum:                            {gigabytes / numpy_seconds:6.2f} GB/s ({numpy_seconds * 1e3:7.2f} ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
