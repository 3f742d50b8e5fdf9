"""Per-sample evaluation throughput: the watched process pool against one process, in one run.

The shipped model on the fast backend (one torch thread per process), every labelled
gesture of a DVS Gesture folder through the reference deployment (10 frames + 6 drain
steps). Data: the test split of the folder given as the first argument, else of ``out/synth29``
(``livegesture synth dataset out/synth29 --users 29``: 330 test gestures) when it exists,
else of a small synthetic folder made here (3 users x 2 lightings, 44 test gestures; about
20 s to make: what a fresh clone measures). The load average is printed first: on a shared
machine other jobs take cores from the pool.

1. In this process, wall time from the call to the report, file reading included, median of
   ``ROUNDS`` alternated runs: one process (the reference: here, no watchdog; it also prints its
   CPU time per sample), and the pool as ``eval`` runs by default, with its per-task watchdog
   (``--file-timeout``), so in worker processes, never this one. Its fork server is started
   first thing, as ``eval`` starts it right after reading its options
   (:func:`~livegesture.evaluate.per_sample.start_workers`); each run's one-off start (this
   process importing torch, the fork server importing it) is outside its time. Target: >= 50
   samples/s with the pool on a 2-core machine; both runs must predict the same. Then the time
   to add workers to the running fork server, each loading the model
   (:func:`~livegesture.evaluate.pool.startup_seconds`): what starting the watchdog's workers
   at once costs over starting one.
2. As a user runs it: ``livegesture eval`` in a fresh process, by default (the watched pool) and
   with ``--file-timeout 0`` (no watchdog: a small set runs in that process), alternated, wall
   time from launch to exit, every start-up included. Target: the default never slower
   (ratio >= 1, from the median of ``ROUNDS``); both must predict the same.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from livegesture.cli import DEFAULT_FILE_TIMEOUT_S
from livegesture.evaluate.per_sample import (
    EvaluatorSpec,
    SampleEvaluation,
    evaluate_samples,
    evaluate_task,
    init_worker,
    start_workers,
)
from livegesture.evaluate.pool import startup_seconds
from livegesture.evaluate.recordings import find_recordings
from livegesture.events import available_cores
from livegesture.model.files import DEFAULT_MODEL

TARGET_SAMPLES_PER_S = 50.0
ROUNDS = 3
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


def in_this_process(folder: Path, spec: EvaluatorSpec) -> tuple[float, float]:
    """Part 1: samples/s of one process and of the watched pool."""
    inventory = find_recordings(folder, "test")
    print(f"{inventory.description}; {inventory.samples} gestures; model {DEFAULT_MODEL.name}, fast backend; "
          f"{available_cores()} cores, load average {os.getloadavg()[0]:.1f}")
    init_worker(spec)  # this process's one-off start: imports torch
    runs: dict[int, list[SampleEvaluation]] = {1: [], available_cores(): []}
    cpu = 0.0
    for _ in range(ROUNDS):
        for workers in runs:
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            runs[workers].append(evaluate_samples(inventory, spec, workers=workers,
                                                  timeout_s=None if workers == 1 else DEFAULT_FILE_TIMEOUT_S))
            if workers == 1:
                cpu_after = resource.getrusage(resource.RUSAGE_SELF)
                cpu += (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    for workers, evaluations in runs.items():
        evaluation = evaluations[0]
        rates = [e.samples_per_second for e in evaluations]
        line = (f"  {workers} process{'es' if workers > 1 else ''}: {len(evaluation.results)} samples at "
                f"{' '.join(f'{r:.1f}' for r in rates)} samples/s (median {statistics.median(rates):.1f}), "
                f"accuracy {100 * (evaluation.scores.accuracy or 0):.1f} %")
        if workers == 1:
            line += f"; {1e3 * cpu / ROUNDS / len(evaluation.results):.1f} ms CPU per sample"
        print(line)
    startup = startup_seconds(evaluate_task, init_worker, (spec,), available_cores())
    print(f"  adding {available_cores()} workers to the running fork server (until each has loaded the model): "
          f"{startup:.2f} s")
    if len({tuple(r.counts for r in e.results) for evaluations in runs.values() for e in evaluations}) != 1:
        raise SystemExit("the pool and one process disagree")
    one, pool = ([e.samples_per_second for e in runs[workers]] for workers in (1, max(runs)))
    return statistics.median(one), statistics.median(pool)


def command_line(folder: Path, scratch: Path) -> tuple[float, float]:
    """Part 2: median wall seconds of ``livegesture eval`` by default and with ``--file-timeout 0``."""
    env = {**os.environ, "LIVEGESTURE_CONFIG": str(scratch / "config.toml"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}
    walls: dict[str, list[float]] = {"default": [], "--file-timeout 0": []}
    counts: dict[str, list] = {}
    for _ in range(ROUNDS):
        for name, extra in (("default", []), ("--file-timeout 0", ["--file-timeout", "0"])):
            out = scratch / "eval"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "livegesture", "eval", str(folder), "--model", str(DEFAULT_MODEL),
                            "--backend", "fast", "--no-progress", "-o", str(out), *extra],
                           env=env, check=True, stdout=subprocess.DEVNULL)
            walls[name].append(time.perf_counter() - started)
            counts[name] = [r["counts"] for r in json.loads((out / "eval.json").read_text())["per_sample"]]
    if counts["default"] != counts["--file-timeout 0"]:
        raise SystemExit("eval and eval --file-timeout 0 disagree")
    for name, seconds in walls.items():
        print(f"  livegesture eval, {name}: {' '.join(f'{s:.2f}' for s in seconds)} s (median "
              f"{statistics.median(seconds):.2f} s), launch to exit")
    return statistics.median(walls["default"]), statistics.median(walls["--file-timeout 0"])


def main() -> None:
    spec = EvaluatorSpec(DEFAULT_MODEL, "fast")
    start_workers(spec, DEFAULT_FILE_TIMEOUT_S)  # as eval does, before its own imports and reading
    with tempfile.TemporaryDirectory() as scratch:
        folder = dataset(Path(scratch) / "data")
        one, pool = in_this_process(folder, spec)
        met = pool >= TARGET_SAMPLES_PER_S
        print(f"pool vs one process: {pool / one:.2f}x; pool {pool:.1f} samples/s "
              f"(target >= {TARGET_SAMPLES_PER_S:.0f}): {'OK' if met else 'MISSED'}")
        watched, here = command_line(folder, Path(scratch))
        print(f"eval by default vs --file-timeout 0, launch to exit: {here / watched:.2f}x "
              f"(target >= 1): {'OK' if watched <= here else 'SLOWER'}")


if __name__ == "__main__":
    main()
