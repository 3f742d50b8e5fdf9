"""Write the shipped model: a trained model file with the live window's default events per frame
chosen by ``livegesture tune`` on the training set's validation sessions, and the per-sample
figures of ``livegesture eval --float-checkpoint`` on those sessions recorded in its metadata.

    .venv/bin/python scripts/ship_model.py runs/live/model.npz runs/tune-val/tune.json \
        runs/eval-val/eval.json assets/gesture-model.npz

Only the metadata changes: the network is written back as it was trained.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from livegesture.model.files import load_model, save_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="model.npz of a --live-windows training run")
    parser.add_argument("tune", type=Path, help="tune.json of `livegesture tune` on validation sessions")
    parser.add_argument("per_sample", type=Path, help="eval.json of `livegesture eval --float-checkpoint` on them")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    model = load_model(args.model)
    if model.info.live_window is None:
        print(f"{args.model}: not trained on live windows", file=sys.stderr)
        return 2
    tune = json.loads(args.tune.read_text())
    best = tune["best"]
    window = replace(model.info.live_window, events_per_frame=int(best.get("events_per_frame",
                                                                          model.info.live_window.events_per_frame)))
    evaluation = json.loads(args.per_sample.read_text())
    training = {**model.info.training,
                "validation": {"source": tune["source"], "tuned": best,
                               "per_sample": {"source": evaluation["source"], "samples": evaluation["samples"],
                                              "integer": evaluation["accuracy"],
                                              "float": (evaluation.get("torch_model") or {}).get("accuracy")}}}
    path = save_model(args.out, model.network, replace(model.info, live_window=window, training=training))
    print(f"{path}: live window {window.events_per_frame} events per frame "
          f"(trained on {window.events_per_frame_range[0]}-{window.events_per_frame_range[1]}); tuned {best}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
