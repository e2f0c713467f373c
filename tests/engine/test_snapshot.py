"""Tensor details: what they say, and what they cost in memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from app.engine.snapshot import tensor_detail

ROOT = Path(__file__).resolve().parents[2]


def test_the_histogram_counts_every_finite_value_as_numpy_does() -> None:
    values = torch.randn(3_000_001, generator=torch.Generator().manual_seed(0))
    values[::1000] = float("nan")
    values[1::1000] = float("inf")
    detail = tensor_detail(values)

    finite = values[torch.isfinite(values)].double().numpy()
    expected, edges = np.histogram(finite, bins=32, range=(finite.min(), finite.max()))
    assert detail["histogram"]["counts"] == expected.tolist()
    assert np.allclose(detail["histogram"]["edges"], edges)
    assert detail["preview"] == [None if not np.isfinite(v) else float(v) for v in values[:8]]


def test_a_tensors_detail_allocates_no_copy_of_it() -> None:
    # In a process of its own: its peak resident memory says what the detail allocated.
    script = textwrap.dedent(
        """
        import resource, torch
        from app.engine.snapshot import tensor_detail
        x = torch.ones(64, 1 << 20)  # 256 MiB
        x[0, 0] = float("nan")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tensor_detail(x)
        tensor_detail(x.numpy())
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    grown_mib = int(done.stdout.split()[-1])

    assert grown_mib < 64, f"a detail of a 256 MiB tensor grew the process by {grown_mib} MiB"
