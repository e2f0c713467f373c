"""A browser step: click `Step` → graph and variables repainted, measured in the page.

One round trip: the step asks for the graph and its layout (`?view=graph`), and the
page draws the graph from them; the bench also prints the bytes the page received per
step (the responses' encoded bodies, from Resource Timing).

Target (DESIGN.md §8): p95 ≤ 100 ms. The page's controller sets the status line's
`data-cursor` last, after the graph and the variables are painted into the DOM; the
clock stops at the frame after that (requestAnimationFrame, then a task), so the time
includes the step request, the graph requests, the DOM work, style, layout and paint;
the page's own `agx:paint` measure gives the DOM work alone.

Runs the `autograd` lesson at its default sizes for STEPS events from the start
(setup, forward ops, the loss, every backward node) in Debian's Chromium against a
live uvicorn on a free port.

Run: .venv/bin/python bench/bench_browser.py [--steps N] [--lesson ID] [--query '?N=8']
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import WORKERS, start_server

CHROMIUM = os.environ.get("AGX_CHROMIUM", "/usr/bin/chromium")
TARGET_P95_MS = 100.0

MEASURE = """
async ([steps, label]) => {
  const status = document.querySelector('[data-testid="status"]');
  const step = document.querySelector(`button[aria-label="${label}"]`);
  const times = [];
  for (let i = 0; i < steps; i++) {
    const before = status.dataset.cursor;
    const painted = new Promise((resolve) => {
      const observer = new MutationObserver(() => {
        if (status.dataset.cursor === before) return;
        observer.disconnect();
        requestAnimationFrame(() => setTimeout(resolve, 0));
      });
      observer.observe(status, { attributes: true, attributeFilter: ["data-cursor"] });
    });
    const started = performance.now();
    step.click();
    await painted;
    times.push(performance.now() - started);
  }
  return times;
}
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextmanager
def _explorer(lesson: str, query: str, workers: int) -> Iterator[tuple[Page, list[str]]]:
    """The explorer page of `lesson` on a fresh server, and the page's errors."""
    with tempfile.TemporaryDirectory() as data_dir:
        server, url = start_server(data_dir, workers=workers)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(f"{url}/lessons/{lesson}{query}")
                page.wait_for_selector(READY)
                yield page, errors
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


READY = 'main[aria-busy="false"] [data-testid="status"][data-cursor]'


def measure(
    *, steps: int = 50, lesson: str = "autograd", query: str = "", workers: int = WORKERS
) -> dict[str, Any]:
    """Click `Step` `steps` times on a fresh server; return the times (ms) and page errors.

    The server runs `workers` worker processes, as deployed: the page's requests then
    reach either process, which catches the session up from its record.
    """
    with _explorer(lesson, query, workers) as (page, errors):
        page.evaluate(MEASURE, [3, "Step"])  # warm-up, not measured
        page.evaluate("performance.clearMeasures(); performance.clearResourceTimings()")
        page.evaluate("performance.setResourceTimingBufferSize(100000)")
        times = page.evaluate(MEASURE, [steps, "Step"])
        received = page.evaluate(
            """() => performance.getEntriesByType('resource')
                .filter((e) => e.name.includes('/api/sessions/'))
                .map((e) => [e.name, e.encodedBodySize])"""
        )
        paints = page.evaluate(
            "performance.getEntriesByName('agx:paint').map((entry) => entry.duration)"
        )
    return {
        "times": times,
        "paints": paints,
        "errors": errors,
        "requests_per_step": len(received) / max(len(times), 1),
        "bytes_per_step": sum(size for _, size in received) / max(len(times), 1),
        "p50": statistics.median(times),
        "p95": percentile(times, 0.95),
    }


def step_back_after_run(
    *, lesson: str = "custom_module", waits: tuple[float, ...] = (0.0, 3.0), workers: int = WORKERS
) -> dict[float, list[float]]:
    """`Run to end`, wait, then press `Step back` 3 times: the times (ms), by wait (s).

    The wait is the user's pause; the server builds checkpoints in it.
    """
    found: dict[float, list[float]] = {}
    for wait in waits:
        with _explorer(lesson, "", workers) as (page, errors):
            page.get_by_role("button", name="Run to end", exact=True).click()
            page.wait_for_function(
                """() => document.querySelector('[data-testid="status"]').dataset.cursor
                    !== '0' && document.querySelector('main').ariaBusy === 'false'""",
                timeout=60_000,
            )
            time.sleep(wait)
            found[wait] = page.evaluate(MEASURE, [3, "Step back"])
            if errors:
                raise RuntimeError(f"page errors: {errors}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lesson", default="autograd")
    parser.add_argument("--query", default="", help="config in the URL, e.g. '?N=8&D_in=16'")
    parser.add_argument("--workers", type=int, default=WORKERS, help="server processes")
    args = parser.parse_args()
    m = measure(steps=args.steps, lesson=args.lesson, query=args.query, workers=args.workers)
    if m["errors"]:
        print("page errors:", *m["errors"], sep="\n  ")
        return 1
    times, p50, p95 = m["times"], m["p50"], m["p95"]
    verdict = "met" if p95 <= TARGET_P95_MS else "NOT met"
    print(f"browser step, click → graph and variables repainted: {args.lesson}, {len(times)} steps")
    print(f"  p50 {p50:6.1f} ms")
    print(f"  p95 {p95:6.1f} ms   (target ≤ {TARGET_P95_MS:.0f} ms: {verdict})")
    print(f"  max {max(times):6.1f} ms")
    dom = statistics.median(m["paints"])
    print(f"  of which DOM work (the views' render, after the responses): p50 {dom:.1f} ms")
    print(
        f"  {m['requests_per_step']:.1f} requests and {m['bytes_per_step'] / 1024:.1f} KiB"
        " received per step"
    )
    backs = step_back_after_run(workers=args.workers)
    print("`Step back` after `Run to end` (custom_module, 500 iterations), 3 presses:")
    for wait, times in backs.items():
        shown = ", ".join(f"{t:.0f}" for t in times)
        print(f"  pressed {wait:.0f} s after the run ended: {shown} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
