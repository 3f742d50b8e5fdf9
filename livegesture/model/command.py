"""Handlers of ``livegesture train`` and ``livegesture convert``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from livegesture.model.config import NUM_CLASSES, TrainConfig


def class_weights(pairs: list[list[float]] | None) -> tuple[float, ...] | None:
    """``--class-weight CLASS WEIGHT`` pairs (classes counted from 1, as users read them) -> a
    weight for each class, 1 where none is given; None without any pair."""
    from livegesture.model.train import TrainingError

    if not pairs:
        return None
    weights = [1.0] * NUM_CLASSES
    for number, weight in pairs:
        if not number.is_integer() or not 1 <= number <= NUM_CLASSES or weight <= 0:
            raise TrainingError(f"--class-weight {number:g} {weight:g}: a class 1-{NUM_CLASSES} and a positive weight")
        weights[int(number) - 1] = weight
    return tuple(weights)


def train(args: argparse.Namespace) -> int:
    """Train on a DVS Gesture folder (IBM layout) and write ``OUT/model.npz``."""
    from livegesture.model.train import TrainingError, load_dataset, train as run_training, train_live
    from livegesture.model.windows import WindowRange

    config = TrainConfig().with_overrides(
        class_weights=class_weights(args.class_weight), epochs=args.epochs, qat_epochs=args.qat_epochs, batch_size=args.batch_size,
        lr=args.lr, qat_lr=args.qat_lr, loss=args.loss, timesteps=args.timesteps, drain_steps=args.drain_steps,
        max_shift=args.max_shift, drop_rate=args.drop_rate, mirror=args.mirror, val_fraction=args.val_fraction, seed=args.seed,
        device=args.device, net_channels=args.channels, net_conv_layers=args.conv_layers)
    provenance: dict[str, Any] = {}
    if args.note:
        provenance["note"] = args.note
    if args.init:
        provenance["initial_weights"] = str(Path(args.init).resolve())
    options = {"resume": args.resume, "init": args.init, "progress": not args.no_progress}
    if args.live_windows:
        try:
            window = WindowRange(events_per_frame=tuple(args.events_per_frame or WindowRange().events_per_frame),
                                 frames=config.timesteps, drain_steps=config.drain_steps,
                                 min_inside=args.min_inside, max_idle_overlap=args.max_idle_overlap)
        except ValueError as err:
            raise TrainingError(f"--live-windows: {err}") from None
        result = train_live(args.dataset, args.out, config, window, windows_per_epoch=args.windows_per_epoch,
                            validation_windows=args.validation_windows, provenance=provenance, **options)
    else:
        train_set, test_set, data_provenance = load_dataset(args.dataset, config.timesteps, Path(args.out),
                                                            limit=args.limit, progress=not args.no_progress)
        result = run_training(train_set, test_set, args.out, config, provenance={**data_provenance, **provenance},
                              **options)
    print(f"{result.model_path}: float {100 * result.float_accuracy:.2f} %, "
          f"integer {100 * result.integer_accuracy:.2f} % on the test split")
    return 0


def convert(args: argparse.Namespace) -> int:
    """Convert a checkpoint or model, describe it, optionally verify and write it."""
    from livegesture.model.convert import describe, load_source, verify, write

    model = load_source(args.source, trust_pickle=args.trust_pickle, threshold=args.threshold, leak=args.leak)
    print(f"{args.source}:")
    for line in describe(model.network):
        print(f"  {line}")
    if args.verify:
        result = verify(model, samples=args.verify)
        if len(result.engines) < 2:
            print(f"  verify: only {result.engines[0]} holds this network; nothing to compare "
                  f"({result.output_spikes} output spikes on {result.samples} random samples)")
        else:
            verdict = "identical" if result.identical else "DIFFERENT"
            print(f"  verify: {', '.join(result.engines)} on {result.samples} random samples x {result.steps} "
                  f"steps: {verdict} output spikes ({result.output_spikes} spikes)")
        if not result.identical:
            return 1
    if args.output:
        print(f"written {write(model, args.output)}")
    return 0
