"""The remote pipeline against the local one, in one run: frames/s and decision latency.

The shipped demo session, integrated once into frames, goes through the shipped model on the
``fast`` backend four ways: a local engine; a ``livegesture serve`` subprocess over loopback;
the same server behind an *emulated* 40 ms round trip (tc netem needs the ``sch_netem`` kernel
module and a network namespace, which containers often lack: here
:class:`~livegesture.pipeline.remote.testing.DelayLink`, a userspace relay in its own process,
delays each direction by 20 ms, on the real-time scheduler where allowed, so that it delivers
when due whatever the desk's load, as a network does); and the same relay without delay, which
separates the relay's own cost (a Python process competing for the CPUs) from the round trip's.

Throughput: every frame pushed as fast as possible, then the last answer. Latency of a
decision: from pushing the frame that completes a window (the earlier frames answered, then
:data:`LATENCY_IDLE_S` idle, in every configuration alike) to having its decision; and the
live pipeline's own figure (from the hand-over of the batch that completed a window to the
decision's publication) on the demo session, paced (:data:`LIVE_SPEED`) and replayed
:data:`LIVE_REPLAYS` times per configuration, in rotated order. The configurations
run ``--repeats`` times (:data:`REPEATS`), interleaved: each engine is opened once, and each
repetition times the throughput of each remote configuration, in a rotated order, between two
runs of the local engine (local, remote, local, remote, ...), then every configuration's latency;
each remote throughput is a ratio to the mean of the two local runs around it (a latency, to
the local one of the same repetition), and the median over repetitions counts (the range is
printed too): the development machines are shared and their speed drifts by 15 % from one
2-second run to the next, which two neighbouring local runs cancel to first order. Targets: remote
throughput >= 90 % of local at 0 and 40 ms; added latency <= the round trip + 5 ms. The exit
status says whether every median met its target.

A desk and a CRI host are two machines. Where this one has two cores or more (and Linux's CPU
affinity), the server runs on a core of its own (:data:`HOST_CPU`) and this process (the desk)
with the relays on another (:data:`DESK_CPU`): each side has one core to itself, as on the real
pair (the desk's reader, integrator and worker threads of a remote live pipeline share the
desk's core with the relays). The local engine steps its frames on the server's core (this thread
moves there while it is timed, and a local live pipeline's threads start there), so that a ratio
compares the same core's stepping with and without the network between, not two cores, whose
speeds drift apart; ``--shared-cores`` lets the scheduler place everything (the server then
shares its core and caches with the desk and the relays, which no CRI host does).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path

import numpy as np

from livegesture.commands import DEMO_RECORDING
from livegesture.model.files import DEFAULT_MODEL, load_model
from livegesture.pipeline.engine import make_engine
from livegesture.pipeline.frames import FrameBuilder
from livegesture.pipeline.runner import Pipeline
from livegesture.pipeline.settings import PipelineSettings
from livegesture.sources import open_source

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 1_200
"""Frames pushed for the throughput (the demo session's 203, repeated)."""
LATENCY_WINDOWS = 20
"""Windows timed for the latency, per repetition."""
LATENCY_IDLE_S = 0.05
"""Idle time before each timed frame, in every configuration, longer than the emulated round trip:
so that each starts its timed frame from the same idle state. On the 2-core development machine a
core steps a window's last frame about 1 ms slower after 3 ms or more idle than back to back (4.4
ms after 1 ms idle, 6.1-6.3 ms after 3-20 ms), which a server waiting out the round trip pays and
back-to-back local pushes would not: the difference would be counted as the link's."""
ONE_WAY_MS = 20.0
THROUGHPUT_TARGET = 0.90
LATENCY_SLACK_MS = 5.0
REPEATS = 15
"""Repetitions: a ratio of two 2-second runs varies by about 10 % here, so the median of 15 is
close to the true one (the mean and twice its standard error are printed with it)."""
LIVE_SPEED = 4.0
"""Pace of the live pipeline's replays: the 21.6 s demo session in 5.4 s, within the 10 s over which
the pipeline's latency figure is taken (at real time it held only the last half of the session's
decisions); 38 frames/s on average, a fraction of what either side can step, as live."""
LIVE_REPLAYS = 3
"""Replays of the demo session per configuration for the live pipeline's figure (12 decisions each)."""
DESK_CPU, HOST_CPU = 0, 1
"""The cores of the desk side (this process, the relays) and of the server, when pinned."""


def demo_frames(settings: PipelineSettings) -> list:
    """The demo session's frames, repeated to :data:`FRAMES` (a whole number of windows)."""
    frames: list = []
    with open_source(DEMO_RECORDING) as source:
        builder = FrameBuilder(source.sensor_size, settings)
        for batch in source:
            frames += builder.push(batch)
    count = FRAMES // settings.clear_every * settings.clear_every
    return (frames * -(-count // len(frames)))[:count]


def can_pin() -> bool:
    """Whether the two sides can each have a core: Linux's CPU affinity and both cores available."""
    return hasattr(os, "sched_setaffinity") and {DESK_CPU, HOST_CPU} <= os.sched_getaffinity(0)


@contextmanager
def on_core(cpu: int):
    """This thread on core ``cpu`` meanwhile (its affinity restored after)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def rotated(names: list[str], k: int) -> list[str]:
    """``names`` starting from the ``k``-th (cyclically): no configuration always first."""
    return names[k % len(names):] + names[:k % len(names)]


def start(command: list[str], env: dict[str, str], cpu: int | None) -> tuple[subprocess.Popen, str]:
    """A subprocess (on core ``cpu``, all its threads; None: on this process's cores) and the first
    line it prints."""
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT, preexec_fn=pin)
    return process, process.stdout.readline()


def throughput(engine, frames: list) -> float:
    began = time.perf_counter()
    decided = sum(len(engine.push(frame)) for frame in frames) + len(engine.flush())
    seconds = time.perf_counter() - began
    assert decided == len(frames) // engine.settings.clear_every, decided
    return len(frames) / seconds


def latencies_ms(engine, frames: list) -> np.ndarray:
    window = engine.settings.clear_every
    engine.reset()
    engine.flush()
    result = []
    for k in range(LATENCY_WINDOWS):
        chunk = frames[k * window:(k + 1) * window]
        for frame in chunk[:-1]:
            engine.push(frame)
        engine.flush()
        time.sleep(LATENCY_IDLE_S)
        began = time.perf_counter()
        decisions = engine.push(chunk[-1]) + engine.flush()
        result.append(1e3 * (time.perf_counter() - began))
        assert len(decisions) == 1
    return np.array(result)


def live_latency_ms(network, settings: PipelineSettings) -> tuple[float, float]:
    """(mean, p95) decision latency of the live pipeline over the demo session, paced at
    :data:`LIVE_SPEED` times real time (every decision of it is in the pipeline's latency figure)."""
    with Pipeline(open_source(DEMO_RECORDING), network, settings.replace(speed=LIVE_SPEED, lossless=False)) as pipeline:
        update = pipeline.poll()
        while not update.finished:
            time.sleep(0.2)
            update = pipeline.poll()
            if update.error:
                raise SystemExit(update.error)
    return update.stats.latency_ms_mean, update.stats.latency_ms_p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help=f"interleaved repetitions ({REPEATS})")
    parser.add_argument("--shared-cores", action="store_true", help="let the scheduler place the server, "
                        "the desk and the relays (default: server and desk on cores of their own, the local "
                        "engine on the server's)")
    options = parser.parse_args()
    repeats = options.repeats
    if repeats < 1:
        parser.error(f"--repeats must be at least 1, got {repeats}")
    pinned = not options.shared_cores and can_pin()
    if pinned:  # before any engine starts a thread; the relays inherit the desk's core
        os.sched_setaffinity(0, {DESK_CPU})
    print(f"server on core {HOST_CPU}, desk and relays on core {DESK_CPU}, the local engine timed on core {HOST_CPU}"
          if pinned else "cores shared: the scheduler places the server, the desk and the relays")
    model = load_model(DEFAULT_MODEL)
    # the quiet-scene gate off: every decision closes a window (the looped demo has quiet stretches,
    # whose extra "no gesture" decisions would break the window-by-window timing)
    settings = PipelineSettings(backend="fast", min_event_rate=0.0)
    frames = demo_frames(settings)
    token = Path(tempfile.mkdtemp()) / "bench.token"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIVEGESTURE_TOKEN_FILE": str(token)}
    os.environ["LIVEGESTURE_TOKEN_FILE"] = str(token)
    server, line = start([sys.executable, "-m", "livegesture", "serve", "--backend", "fast", "--port", "0"], env,
                         HOST_CPU if pinned else None)
    port = int(line.split("listening on 127.0.0.1:")[1].split(";")[0])
    links = [start([sys.executable, "-m", "livegesture.pipeline.remote.testing", str(port), str(ms), "--realtime"],
                   env, None) for ms in (0.0, ONE_WAY_MS)]
    relayed, delayed = (int(line.split("listening on ")[1].split(";")[0]) for _, line in links)
    print(f"relays: {links[0][1].split('; ', 1)[1].strip()}")
    rtt_ms = 2 * ONE_WAY_MS
    runs = {"local": ("", 0.0), "remote, 0 ms": (f"127.0.0.1:{port}", 0.0),
            "remote, relay 0 ms": (f"127.0.0.1:{relayed}", 0.0),
            f"remote, emulated {rtt_ms:.0f} ms RTT": (f"127.0.0.1:{delayed}", rtt_ms)}
    names = list(runs)
    rates: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names[1:]}
    latencies: dict[str, list[float]] = {name: [] for name in names}
    try:
        with ExitStack() as stack:
            engines = {name: stack.enter_context(make_engine(model.network, settings.replace(remote=remote)))
                       for name, (remote, _) in runs.items()}
            for engine in engines.values():
                engine.push(frames[0])  # warm: first torch calls, the link up
                engine.reset()
                engine.flush()

            def where(name: str):
                return on_core(HOST_CPU) if pinned and name == "local" else nullcontext()

            for k in range(repeats):
                order = rotated(names, k)
                remotes = [name for name in order if name != "local"]
                with where("local"):
                    local_rates = [throughput(engines["local"], frames)]
                for name in remotes:  # each between two local runs: a drift of the speed cancels
                    rates[name].append(throughput(engines[name], frames))
                    with where("local"):
                        local_rates.append(throughput(engines["local"], frames))
                    ratios[name].append(rates[name][-1] / np.mean(local_rates[-2:]))
                rates["local"] += local_rates
                for name in order:
                    with where(name):
                        latencies[name].append(float(latencies_ms(engines[name], frames).mean()))
        for name in names:
            print(f"{name:>26}: {np.median(rates[name]):7.1f} frames/s, decision latency "
                  f"{np.median(latencies[name]):6.1f} ms (medians of {len(rates[name])} and {repeats})")
        live: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        for k in range(LIVE_REPLAYS):
            for name in rotated(names, k):
                with where(name):  # the local pipeline's threads (its worker stepping) on the server's core
                    live[name].append(live_latency_ms(model.network, settings.replace(remote=runs[name][0])))
        local_mean = np.mean([mean for mean, _ in live["local"]])
        for name, replays in live.items():
            mean, p95 = np.mean([m for m, _ in replays]), np.median([p for _, p in replays])
            added = "" if name == "local" else f" ({mean - local_mean:+.1f} ms)"
            print(f"{name:>26}: live pipeline ({LIVE_REPLAYS} replays at x{LIVE_SPEED:g} real time), latency "
                  f"{mean:6.1f} ms mean{added}, {p95:6.1f} ms p95")
    finally:
        for process in (*(link for link, _ in links), server):
            process.send_signal(2)
            process.wait(10)
    ok = True
    for name in names[1:]:
        ratio = np.array(ratios[name])
        added = np.array(latencies[name]) - np.array(latencies["local"])
        rtt = runs[name][1]
        rate_ok = np.median(ratio) >= THROUGHPUT_TARGET
        latency_ok = np.median(added) <= rtt + LATENCY_SLACK_MS
        ok &= bool(rate_ok and latency_ok)
        spread = 2 * ratio.std(ddof=1) / np.sqrt(len(ratio)) if len(ratio) > 1 else float("nan")
        print(f"{name:>26}: throughput x{np.median(ratio):.2f} of local (x{ratio.min():.2f}-{ratio.max():.2f}, "
              f"mean x{ratio.mean():.2f} +- {spread:.2f}; "
              f"target >= {THROUGHPUT_TARGET:.2f}: {'met' if rate_ok else 'MISSED'}); added latency "
              f"{np.median(added):+.1f} ms ({added.min():+.1f} to {added.max():+.1f}; target <= {rtt:.0f} + "
              f"{LATENCY_SLACK_MS:.0f} ms: {'met' if latency_ok else 'MISSED'})")
    relay = np.array(ratios[names[-1]]) / np.array(ratios["remote, relay 0 ms"])
    print(f"{'the round trip alone':>26}: throughput x{np.median(relay):.2f} of the same relay at 0 ms "
          f"(one frame per round trip would give {1e3 / rtt_ms:.0f} frames/s)")
    sessions = re.findall(r"after ([\d,]+) frames in ([\d,]+) messages", server.stdout.read())
    sent = [sum(int(group[i].replace(",", "")) for group in sessions) for i in (0, 1)]
    print(f"{'frames per message':>26}: {sent[0] / max(1, sent[1]):.1f} (desk to server, all sessions)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
