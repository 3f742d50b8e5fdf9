"""Streaming figures of a model on fresh held-out sessions, each against its target.

Makes continuous labelled sessions of users and a seed that no training run or setting choice
of this project used (users 30-33, seed 11; DVS Gesture timing: 6-10 s gestures), twice: with
the current generator, and with the generator as it was at commit f7909a4 (``--gesture-seconds
6 10``, checked out into a temporary git worktree), so that a gain cannot come from easier data.
Then runs the live pipeline's decisions over them (``eval --streaming`` at the default settings,
or the model's trained window) and the reference per-sample deployment on the same gestures,
and prints every figure next to its target.

    python benchmarks/bench_streaming.py [--model assets/gesture-model.npz] [--users 4] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livegesture.evaluate.per_sample import EvaluatorSpec, evaluate_samples  # noqa: E402
from livegesture.evaluate.recordings import find_recordings  # noqa: E402
from livegesture.evaluate.streaming import evaluate_stream  # noqa: E402
from livegesture.model.files import DEFAULT_MODEL, load_model  # noqa: E402
from livegesture.pipeline.engine import resolve_backend  # noqa: E402
from livegesture.pipeline.settings import PipelineSettings  # noqa: E402
from livegesture.sources.dataset import LIGHTING_CONDITIONS  # noqa: E402
from livegesture.synth.generate import SynthSettings  # noqa: E402
from livegesture.synth.gestures import DVSGESTURE_TIMING  # noqa: E402
from livegesture.synth.writers import write_recording  # noqa: E402

HELD_OUT_SEED = 11
FIRST_USER = 30
OLD_GENERATOR = "f7909a4"
TARGETS = {
    "inside": 0.92, "class": 0.80, "between": 0.95, "switches": 0.2, "median": 0.35, "p90": 0.8,
    "per_sample": 0.97, "quantization": 0.5,
}


def lighting_of(user: int) -> str:
    return LIGHTING_CONDITIONS[user % len(LIGHTING_CONDITIONS)]


def make_current(folder: Path, users: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for user in range(FIRST_USER, FIRST_USER + users):
        write_recording(folder / f"user{user:02d}_{lighting_of(user)}.aedat4", None, HELD_OUT_SEED, user,
                        lighting_of(user), workers=2, settings=SynthSettings(timing=DVSGESTURE_TIMING))


def make_old(folder: Path, users: int) -> bool:
    """Sessions from the generator at :data:`OLD_GENERATOR`; False when git cannot check it out."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    checkout = Path(tempfile.mkdtemp(prefix="livegesture-old-"))
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(checkout), OLD_GENERATOR],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"(the generator at {OLD_GENERATOR} is not available: {err}; skipping its sessions)")
        return False
    try:
        for user in range(FIRST_USER, FIRST_USER + users):
            subprocess.run([sys.executable, "-m", "livegesture", "synth", "recording",
                            str(folder / f"user{user:02d}_{lighting_of(user)}.aedat4"), "--seed", str(HELD_OUT_SEED),
                            "--user", str(user), "--lighting", lighting_of(user), "--gesture-seconds", "6", "10",
                            "--quiet"], check=True, cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                           stdout=subprocess.DEVNULL)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)], capture_output=True)
    return True


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(name: str, folder: Path, settings: PipelineSettings) -> None:
    inventory = find_recordings(folder)
    stream = evaluate_stream(inventory, settings, workers=2)
    score = stream.score
    samples = evaluate_samples(inventory, EvaluatorSpec(Path(settings.model), resolve_backend(settings.backend)),
                               workers=2)
    confusion = score.decisions.confusion
    per_class = {c + 1: int(confusion[c, c]) / int(confusion[c].sum()) for c in range(len(confusion) - 1)
                 if confusion[c].sum()}
    latency = score.latency_stats()
    gestures = len(score.gestures)
    per_sample = samples.scores.accuracy
    print(f"\n{name}: {len(inventory.recordings)} sessions, {gestures} gestures, {score.decisions.samples} decisions")
    rows = [
        ("decisions inside gestures correct", f"{score.frame_accuracy:.1%}", f">= {TARGETS['inside']:.0%}",
         score.frame_accuracy >= TARGETS["inside"]),
        ("worst class (inside gestures)", f"{min(per_class.values()):.1%}", f">= {TARGETS['class']:.0%}",
         min(per_class.values()) >= TARGETS["class"]),
        ("decisions between gestures 'no gesture'", f"{score.idle_rejection:.1%}", f">= {TARGETS['between']:.0%}",
         score.idle_rejection >= TARGETS["between"]),
        ("false switches per gesture", f"{score.switches_per_gesture:.2f}", f"<= {TARGETS['switches']}",
         score.switches_per_gesture <= TARGETS["switches"]),
        ("onset to first correct, median", f"{latency['median_s']:.2f} s", f"<= {TARGETS['median']} s",
         latency["median_s"] is not None and latency["median_s"] <= TARGETS["median"]),
        ("onset to first correct, 90 %", f"{latency['p90_s']:.2f} s", f"<= {TARGETS['p90']} s",
         latency["p90_s"] is not None and latency["p90_s"] <= TARGETS["p90"]),
        ("gestures never decided right", f"{score.never_correct:.1%}", "", True),
        ("per-sample accuracy (reference deployment)", f"{per_sample:.1%}", f">= {TARGETS['per_sample']:.0%}",
         per_sample >= TARGETS["per_sample"]),
    ]
    for label, value, target, ok in rows:
        print(f"  {label:44s} {value:>9s}  target {target:10s} {mark(ok) if target else ''}")
    print("  per class inside gestures (1-based): " + ", ".join(f"{c}: {a:.0%}" for c, a in per_class.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--keep", type=Path, default=None, help="write the sessions here and keep them")
    args = parser.parse_args()
    model = load_model(args.model)
    settings = PipelineSettings(model=str(args.model), backend="fast")
    window = model.info.live_window
    if window is not None:
        settings = settings.replace(events_per_frame=window.events_per_frame, clear_every=window.clear_every,
                                    drain_steps=window.drain_steps)
    accuracy = model.info.training.get("accuracy", {})
    print(f"model {args.model}: {settings.events_per_frame} events per frame, windows of {settings.clear_every} "
          f"frames + {settings.drain_steps} drain steps, {settings.mode}; held-out users "
          f"{FIRST_USER}-{FIRST_USER + args.users - 1}, seed {HELD_OUT_SEED}")
    if "float" in accuracy and "integer" in accuracy:
        lost = 100 * (accuracy["float"] - accuracy["integer"])
        print(f"training's test split: float {accuracy['float']:.1%}, integer {accuracy['integer']:.1%}: "
              f"{lost:.2f} points lost to quantization (target <= {TARGETS['quantization']}) "
              f"{mark(lost <= TARGETS['quantization'])}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="livegesture-streaming-"))
    try:
        make_current(work / "current", args.users)
        report("sessions of the current generator", work / "current", settings)
        if make_old(work / "f7909a4", args.users):
            report(f"sessions of the generator at {OLD_GENERATOR}", work / "f7909a4", settings)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
