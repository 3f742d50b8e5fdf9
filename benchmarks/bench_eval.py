"""Per-sample evaluation throughput: the process pool against one process, in one run.

The shipped model on the fast backend (one torch thread per process), every labelled
gesture of a DVS Gesture folder through the reference deployment (10 frames + 6 drain
steps). Wall time from the call to the report, pool start-up and file reading included.
Data: the test split of the folder given as the first argument, else of ``out/synth29``
(``livegesture synth dataset out/synth29 --users 29``: 330 test gestures) when it exists,
else of a small synthetic folder made here (3 users x 2 lightings, 44 test gestures; about
20 s to make). Target: >= 50 samples/s with the pool on a 2-core
machine; both runs must predict the same. The one-process run also prints its CPU time per
sample, and the load average is printed first: on a shared machine other jobs take cores
from the pool. The one-process run (the reference) runs here, without a watchdog; the pool run
as ``eval`` does by default, with its per-task watchdog (``--file-timeout``), so in worker
processes, never in this one. The pool is used only where it pays
(:func:`~livegesture.evaluate.pool.pool_pays`): on a small set the "pool" run stays in its first
worker, and pays that worker's start (the fork server importing the task's modules). Last, the
time to add workers once the fork server runs is printed (:func:`~livegesture.evaluate.pool.startup_seconds`),
next to :data:`~livegesture.evaluate.pool.POOL_STARTUP_S`, which stands for a cold start.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from pathlib import Path

from livegesture.cli import DEFAULT_FILE_TIMEOUT_S
from livegesture.evaluate.per_sample import EvaluatorSpec, evaluate_samples, evaluate_task, init_worker
from livegesture.evaluate.pool import POOL_STARTUP_S, startup_seconds
from livegesture.events import available_cores
from livegesture.evaluate.recordings import find_recordings
from livegesture.model.files import DEFAULT_MODEL

TARGET_SAMPLES_PER_S = 50.0
DEFAULT_DATASET = Path(__file__).resolve().parent.parent / "out" / "synth29"


def dataset(scratch: Path) -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    if (DEFAULT_DATASET / "trials_to_test.txt").is_file():
        return DEFAULT_DATASET
    from livegesture.synth import write_dataset

    print(f"no dataset given and no {DEFAULT_DATASET}: writing a small synthetic one")
    write_dataset(scratch, users=3, lightings=("natural", "led"), test_users=2, workers=available_cores())
    return scratch


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        inventory = find_recordings(dataset(Path(scratch)), "test")
        spec = EvaluatorSpec(DEFAULT_MODEL, "fast")
        print(f"{inventory.description}; {inventory.samples} gestures; model {DEFAULT_MODEL.name}, fast backend; "
              f"{available_cores()} cores, load average {os.getloadavg()[0]:.1f}")
        runs = {}
        for workers in (1, available_cores()):
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            evaluation = evaluate_samples(inventory, spec, workers=workers,
                                          timeout_s=None if workers == 1 else DEFAULT_FILE_TIMEOUT_S)
            runs[workers] = evaluation
            line = (f"  {workers} process{'es' if workers > 1 else ''}: {len(evaluation.results)} samples in "
                    f"{evaluation.seconds:.1f} s = {evaluation.samples_per_second:.1f} samples/s, "
                    f"accuracy {100 * (evaluation.scores.accuracy or 0):.1f} %")
            if workers == 1:
                cpu_after = resource.getrusage(resource.RUSAGE_SELF)
                cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
                line += f"; {1e3 * cpu / len(evaluation.results):.1f} ms CPU per sample"
            print(line)
        startup = startup_seconds(evaluate_task, init_worker, (spec,), available_cores())  # last: its fork server stays
        print(f"  adding {available_cores()} workers to the running fork server (until each has loaded the model): "
              f"{startup:.1f} s; the fork server's own start is in the pool run (POOL_STARTUP_S = {POOL_STARTUP_S:.1f} s)")
    one, pool = runs[1], runs[max(runs)]
    if [r.counts for r in one.results] != [r.counts for r in pool.results]:
        raise SystemExit("the pool and one process disagree")
    ratio = pool.samples_per_second / one.samples_per_second
    met = pool.samples_per_second >= TARGET_SAMPLES_PER_S
    print(f"pool vs one process: {ratio:.2f}x; pool {pool.samples_per_second:.1f} samples/s "
          f"(target >= {TARGET_SAMPLES_PER_S:.0f}): {'OK' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
