"""Pictures and numbers for docs/synthetic_data.md.

    .venv/bin/python scripts/synth_report.py [--users 6] [--workers 2]

Writes PNGs to docs/img/ and prints the statistics quoted in the page: event rates per
class and lighting over ``users`` x 5 lightings x 11 classes clips (seed 0, default
settings) and the generation speed measured on that run.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from livegesture.events import DVS128_SIZE  # noqa: E402
from livegesture.integrate import integrate_sample  # noqa: E402
from livegesture.sources.dataset import LIGHTING_CONDITIONS  # noqa: E402
from livegesture.sources.labels import CLASS_NAMES, NUM_CLASSES  # noqa: E402
from livegesture.synth.generate import Clip, ClipJob, SynthSettings, generate_clip, prepare_clip  # noqa: E402
from livegesture.synth.gestures import RIGHT_CW  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
SEED = 0
WINDOW_US = 30_000
"""Events shown in one picture: 30 ms, about what a viewer shows per refresh."""
SETTINGS = SynthSettings()


def overlay(events: np.ndarray, size=DVS128_SIZE) -> np.ndarray:
    """ON green, OFF red (both: yellow) on black."""
    width, height = size
    image = np.zeros((height, width, 3))
    on = events["p"] == 1
    image[events["y"][on], events["x"][on], 1] = 1.0
    image[events["y"][~on], events["x"][~on], 0] = 1.0
    return image


def window(c: Clip, t_us: int) -> np.ndarray:
    t = c.events["t"]
    return c.events[(t >= t_us) & (t < t_us + WINDOW_US)]


def classes_figure(user: int, lighting_name: str, path: Path, frames: int = 5) -> None:
    fig, axes = plt.subplots(NUM_CLASSES, frames, figsize=(frames * 1.25, NUM_CLASSES * 1.33))
    for label in range(NUM_CLASSES):
        c = generate_clip(ClipJob(SEED, user, lighting_name, label, 0, SETTINGS))
        times = np.linspace(c.gesture_start_us, c.gesture_end_us - WINDOW_US, frames + 2)[1:-1].astype(np.int64)
        for j, t_us in enumerate(times):
            ax = axes[label, j]
            ax.imshow(overlay(window(c, t_us)), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{(t_us - c.gesture_start_us) / 1e6:.1f} s", fontsize=6, pad=1)
        axes[label, 0].set_ylabel(CLASS_NAMES[label].replace(" counter-", "\ncounter-").replace("arm c", "arm\nc"),
                                  fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle(f"user {user}, {lighting_name} light: 30 ms of events (ON green, OFF red)", fontsize=8)
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.1, rect=(0, 0, 1, 0.985))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def lightings_figure(user: int, path: Path) -> None:
    """The scene (rendered intensity) and its events under each lighting, same gesture."""
    fig, axes = plt.subplots(2, len(LIGHTING_CONDITIONS), figsize=(len(LIGHTING_CONDITIONS) * 1.6, 3.5))
    for j, name in enumerate(LIGHTING_CONDITIONS):
        job = ClipJob(SEED, user, name, RIGHT_CW, 0, SETTINGS)
        c = generate_clip(job)
        scene = prepare_clip(job)
        i = int(np.searchsorted(scene.times_us, (c.gesture_start_us + c.gesture_end_us) // 2))
        intensity = scene.renderer.render(scene.track, i, i + 1)[0]
        axes[0, j].imshow(np.log(intensity + scene.light.dark), cmap="gray")
        axes[0, j].set_title(name, fontsize=8)
        axes[1, j].imshow(overlay(window(c, int(scene.times_us[i]))), interpolation="nearest")
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("log intensity", fontsize=7)
    axes[1, 0].set_ylabel("30 ms of events", fontsize=7)
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def net_input_figure(user: int, path: Path) -> None:
    """What the network sees of one gesture: 10 equal-count frames, binarized, 63 x 63."""
    c = generate_clip(ClipJob(SEED, user, "natural", RIGHT_CW, 0, SETTINGS))
    t = c.events["t"]
    sample = c.events[(t >= c.gesture_start_us) & (t < c.gesture_end_us)]
    frames = integrate_sample(sample, 10, DVS128_SIZE)
    fig, axes = plt.subplots(1, 10, figsize=(12, 1.8))
    for i, ax in enumerate(axes):
        image = np.zeros((*frames.shape[2:], 3))
        image[..., 1] = frames[i, 1]
        image[..., 0] = frames[i, 0]
        ax.imshow(image, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"frame {i}", fontsize=7)
    fig.suptitle(f"right arm clockwise, user {user}: {len(sample):,} events as the net's 10 input frames",
                 fontsize=8)
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, 0.86))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def clip_stats(job: ClipJob) -> tuple[int, str, int, int, float, float, float]:
    """user, lighting, class, gesture events, gesture seconds, pause events/s, process seconds."""
    start = time.process_time()
    c = generate_clip(job)
    t = c.events["t"]
    inside = int(np.count_nonzero((t >= c.gesture_start_us) & (t < c.gesture_end_us)))
    still_end = c.gesture_start_us - 600_000  # the still part, before raising the arms
    pause = np.count_nonzero(t < still_end) / (still_end / 1e6)
    return (job.user, job.lighting, job.label, inside, (c.gesture_end_us - c.gesture_start_us) / 1e6, pause,
            time.process_time() - start)


def rates_figure(stats: list, path: Path) -> None:
    label = np.array([s[2] for s in stats])
    light = np.array([s[1] for s in stats])
    count = np.array([s[3] for s in stats], dtype=float)
    rate = count / np.array([s[4] for s in stats]) / 1e3
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    axes[0].boxplot([rate[label == k] for k in range(NUM_CLASSES)])
    axes[0].set_xticks(range(1, NUM_CLASSES + 1), [str(k + 1) for k in range(NUM_CLASSES)])
    axes[0].set_xlabel("class (1-based, as in the label files)")
    axes[0].set_ylabel("k events / s during the gesture")
    axes[0].set_title("event rate per class", fontsize=9)
    axes[1].boxplot([rate[light == name] for name in LIGHTING_CONDITIONS])
    axes[1].set_xticks(range(1, len(LIGHTING_CONDITIONS) + 1), [n.replace("_", "\n") for n in LIGHTING_CONDITIONS])
    axes[1].set_title("event rate per lighting", fontsize=9)
    axes[2].hist(count / 1e3, bins=30, color="tab:gray")
    axes[2].set_xlabel("k events per gesture (3.5-5 s)")
    axes[2].set_title("events per gesture", fontsize=9)
    for ax in axes[:2]:
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    IMG.mkdir(parents=True, exist_ok=True)
    classes_figure(2, "natural", IMG / "synth_classes.png")
    classes_figure(5, "fluorescent", IMG / "synth_classes_fluorescent.png")
    lightings_figure(3, IMG / "synth_lightings.png")
    net_input_figure(2, IMG / "synth_net_input.png")

    jobs = [ClipJob(SEED, user, name, label, 0, SETTINGS) for user in range(1, args.users + 1)
            for name in LIGHTING_CONDITIONS for label in range(NUM_CLASSES)]
    start = time.monotonic()
    with ProcessPoolExecutor(args.workers) as pool:
        stats = list(pool.map(clip_stats, jobs))
    wall = time.monotonic() - start
    rates_figure(stats, IMG / "synth_rates.png")

    count = np.array([s[3] for s in stats], dtype=float)
    rate = count / np.array([s[4] for s in stats])
    labels = np.array([s[2] for s in stats])
    lights = np.array([s[1] for s in stats])
    cpu = np.array([s[6] for s in stats])
    print(f"{len(jobs)} gestures in {wall:.0f} s with {args.workers} workers: {len(jobs) / wall:.2f} gestures/s; "
          f"{cpu.mean():.2f} s of CPU per gesture (-> {args.workers / cpu.mean():.2f} gestures/s on "
          f"{args.workers} idle cores)")
    print(f"events per gesture: median {np.median(count):,.0f}, 5-95 % {np.percentile(count, 5):,.0f}"
          f"-{np.percentile(count, 95):,.0f}")
    print(f"events/s in gestures: median {np.median(rate):,.0f}, 5-95 % {np.percentile(rate, 5):,.0f}"
          f"-{np.percentile(rate, 95):,.0f}")
    print("median events/s per class:", {k + 1: int(np.median(rate[labels == k])) for k in range(NUM_CLASSES)})
    print("median events/s per lighting:", {n: int(np.median(rate[lights == n])) for n in LIGHTING_CONDITIONS})
    pause = np.array([s[5] for s in stats])
    print("median events/s standing still, per lighting:",
          {n: int(np.median(pause[lights == n])) for n in LIGHTING_CONDITIONS})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
