"""The ``livegesture`` command line: one subcommand per job.

Each subcommand's module is imported only when it runs, so ``--help`` is quick and a
missing optional dependency (torch, hs_api) only matters to the jobs that use it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence

from livegesture import __version__
from livegesture.events import LivegestureError

Handler = Callable[[argparse.Namespace], int]
DEFAULT_FILE_TIMEOUT_S = 600.0
"""eval / tune: the watchdog's limit per task (one recording, or part of one), in seconds."""


SOURCE_HELP = "recording path (.aedat AEDAT 2.0 or 3.1, .aedat4), 'camera' / 'camera:SERIAL', or 'tcp://HOST:PORT'"


def _add_on_reset(p: argparse.ArgumentParser) -> None:
    from livegesture.sources.resets import ON_RESET_CHOICES

    p.add_argument("--on-reset", choices=ON_RESET_CHOICES, default="error",
                   help="a recording whose timestamps jump back (a camera restarted): error (default), rebase (one "
                        "continuous recording) or split (its parts kept apart, 1 s between them)")


def _add_info(sub: argparse._SubParsersAction) -> None:
    from livegesture.pipeline.options import add_setting_options

    p = sub.add_parser("info", help="describe a recording or camera: sensor, events, duration, labels",
                       description="Read a recording (.aedat AEDAT 2.0 or 3.1, .aedat4) and print what it holds.")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("--config", default=None, metavar="FILE", help="settings file whose roi is described "
                                                                  "(TOML, table [pipeline])")
    add_setting_options(p, ("roi",))
    _add_on_reset(p)
    p.set_defaults(handler=_lazy("livegesture.commands", "info"))


def _add_run(sub: argparse._SubParsersAction) -> None:
    from livegesture.pipeline.options import add_setting_options

    p = sub.add_parser("run", help="recognise gestures live on a recording or the camera",
                       description="Replay a recording (or read the camera) through the live pipeline: sliding "
                                   "integrator, spiking network, running prediction. Settings come from the "
                                   "config file (--config, $LIVEGESTURE_CONFIG or ~/.config/livegesture/"
                                   "config.toml), overridden by these options.")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("--headless", action="store_true", help="print to the terminal instead of opening a window")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds of wall time")
    p.add_argument("--config", default=None, metavar="FILE", help="settings file (TOML, table [pipeline])")
    p.add_argument("--save-config", action="store_true", help="write the resulting settings to the config file")
    add_setting_options(p.add_argument_group("settings (default: from the config file)"))
    _add_on_reset(p)
    p.set_defaults(handler=_lazy("livegesture.commands", "run"))


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the demo on a shipped recording (headless where there is no display)",
                       description="Run the demo on the shipped recording: the GUI when a display is "
                                   "available, otherwise the headless mode.")
    p.add_argument("--headless", action="store_true", help="force the headless mode")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds of wall time")
    p.set_defaults(handler=_lazy("livegesture.commands", "demo"))


def _add_gui(sub: argparse._SubParsersAction) -> None:
    from livegesture.pipeline.options import add_setting_options

    p = sub.add_parser("gui", help="the live window: events, network input, prediction, controls, recording",
                       description="Open the window on a recording or the camera (or on nothing: choose one in the "
                                   "window). Settings come from the config file (--config, $LIVEGESTURE_CONFIG or "
                                   "~/.config/livegesture/config.toml) and are saved there on close.")
    p.add_argument("source", nargs="?", default=None, help=SOURCE_HELP)
    p.add_argument("--config", default=None, metavar="FILE", help="settings file (TOML, table [pipeline])")
    add_setting_options(p, ("model", "backend", "remote"))
    p.add_argument("--duration", type=float, default=None, help="close the window after this many seconds")
    _add_on_reset(p)
    p.set_defaults(handler=_lazy("livegesture.gui.app", "gui"))


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from livegesture.pipeline.settings import AUTO_BACKEND, BACKEND_CHOICES, SETTING_HELP
    from livegesture.pipeline.remote.protocol import DEFAULT_HOST, DEFAULT_PORT
    from livegesture.pipeline.remote.server import MAX_SESSIONS

    p = sub.add_parser("serve", help="on a CRI host: own the hardware and step the frames desks send (--remote)",
                       description="Load the model once, own the backend (the CRI hardware on a CRI host: one "
                                   "process) and answer desks running `livegesture run|gui|eval --remote HOST:PORT`: "
                                   "their binarized frames in, decisions, output counts and hardware counters out. "
                                   "Listens on loopback by default: reach it through `ssh -L`. A desk authenticates "
                                   "with the token file (written on first start). Ctrl-C stops.")
    p.add_argument("--model", default=None, metavar="FILE", help="model file (default: the shipped model)")
    p.add_argument("--backend", default=AUTO_BACKEND, choices=BACKEND_CHOICES, help=SETTING_HELP["backend"])
    p.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s: this host only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default %(default)s; 0: any free port)")
    p.add_argument("--token-file", default=None, metavar="FILE",
                   help="shared token (default $LIVEGESTURE_TOKEN_FILE or ~/.config/livegesture/remote.token)")
    p.add_argument("--max-sessions", type=int, default=MAX_SESSIONS,
                   help="desks served at once by a simulator backend (default %(default)s; cri: 1)")
    p.set_defaults(handler=_lazy("livegesture.pipeline.remote.server", "serve"))


def _add_train(sub: argparse._SubParsersAction) -> None:
    from livegesture.model.config import LOSSES, NetConfig, TrainConfig
    from livegesture.model.windows import MAX_IDLE_OVERLAP, MIN_INSIDE

    t, n = TrainConfig(), NetConfig()
    p = sub.add_parser("train", help="train the spiking CNN on DVS Gesture and write a CRI model file",
                       description="Train on a DVS Gesture folder in IBM's layout (user*_*.aedat, *_labels.csv, "
                                   "trials_to_train.txt / trials_to_test.txt): float training, then "
                                   "quantization-aware fine-tuning to CRI's integers; writes OUT/model.npz with "
                                   "the float and integer test accuracies. Uses a GPU when there is one.")
    p.add_argument("dataset", help="DVS Gesture folder (the real dataset or `livegesture synth dataset` output)")
    p.add_argument("-o", "--out", default="runs/train", help="output folder: checkpoints, log.jsonl, model.npz "
                                                              "(default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from its last checkpoint")
    p.add_argument("--init", metavar="PT", help="start from the float weights of an earlier run (its best-float.pt), "
                                                "e.g. to train longer at a lower learning rate")
    p.add_argument("--epochs", type=int, help=f"float training epochs (default {t.epochs})")
    p.add_argument("--qat-epochs", type=int, help=f"quantization-aware epochs (default {t.qat_epochs})")
    p.add_argument("--batch-size", type=int, help=f"samples per batch (default {t.batch_size})")
    p.add_argument("--lr", type=float, help=f"Adam learning rate, cosine schedule (default {t.lr})")
    p.add_argument("--qat-lr", type=float, help=f"learning rate of the quantization-aware phase (default {t.qat_lr})")
    p.add_argument("--loss", choices=LOSSES, help=f"ce: cross-entropy of the output spike counts, mse: squared "
                                                  f"error of the rates (default {t.loss})")
    p.add_argument("--channels", type=int, help=f"channels per convolution (default {n.channels})")
    p.add_argument("--conv-layers", type=int, help=f"convolution layers (default {n.conv_layers})")
    p.add_argument("--timesteps", type=int, help=f"frames per sample (default {t.timesteps})")
    p.add_argument("--drain-steps", type=int, help=f"empty steps after the frames (default {t.drain_steps})")
    p.add_argument("--max-shift", type=int, help=f"random translation in pixels (default {t.max_shift})")
    p.add_argument("--drop-rate", type=float, help=f"random pixel dropout (default {t.drop_rate})")
    p.add_argument("--no-mirror", dest="mirror", action="store_false", default=None,
                   help="do not mirror samples left-right (with their mirrored class) in training")
    p.add_argument("--val-fraction", type=float, help=f"training samples held out for model selection "
                                                      f"(default {t.val_fraction})")
    p.add_argument("--seed", type=int, help=f"random seed (default {t.seed})")
    p.add_argument("--class-weight", type=float, nargs=2, action="append", metavar=("CLASS", "WEIGHT"),
                   help="weigh the samples of class CLASS (1-11) by WEIGHT in the loss (repeatable; default 1)")
    p.add_argument("--device", help=f"torch device: auto, cpu, cuda (default {t.device})")
    p.add_argument("--limit", type=int, default=None, help="use at most this many samples per split (quick runs)")
    p.add_argument("--live-windows", action="store_true",
                   help="train on windows drawn from the continuous recordings as the live pipeline makes them "
                        "(random offsets, idle periods with silence as the target, whole gestures mixed in) "
                        "instead of whole gestures only")
    p.add_argument("--events-per-frame", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="with --live-windows: range of events per frame drawn (default 500 1600)")
    p.add_argument("--min-inside", type=float, default=MIN_INSIDE, metavar="SHARE",
                   help="with --live-windows: a window ending in a gesture is drawn as it when at least this share "
                        "of its time lies inside it (default %(default)s)")
    p.add_argument("--max-idle-overlap", type=float, default=MAX_IDLE_OVERLAP, metavar="SHARE",
                   help="with --live-windows: a window ending outside every gesture is drawn as idle (target: "
                        "silence) when at most this share of its time lies in one (default %(default)s)")
    p.add_argument("--windows-per-epoch", type=int, default=2400,
                   help="with --live-windows: windows drawn afresh each epoch (default %(default)s)")
    p.add_argument("--validation-windows", type=int, default=600,
                   help="with --live-windows: windows drawn once from the test split (default %(default)s)")
    p.add_argument("--note", default=None, help="free text kept in the model's training metadata "
                                                "(e.g. how the dataset was made)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_lazy("livegesture.model.command", "train"))


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a trained model to CRI's format, check it, write it",
                       description="Read a training checkpoint (.pt), a livegesture model (.npz) or an hs_api "
                                   "pickle (.pkl: axons, connections, outputs), print the CRI network, optionally "
                                   "verify that every simulator (and the torch model) spikes identically, and "
                                   "write it as .npz or as an hs_api .pkl for CRI_network.")
    p.add_argument("source", help="checkpoint .pt, model .npz or hs_api .pkl")
    p.add_argument("-o", "--output", help="write to this .npz (livegesture) or .pkl (hs_api) file")
    p.add_argument("--verify", type=int, default=0, metavar="N",
                   help="run N random samples through all engines that hold the net and compare step by step")
    p.add_argument("--trust-pickle", action="store_true",
                   help="read a .pkl with plain pickle (runs code in the file: only for files you trust); "
                        "by default only plain data is accepted")
    p.add_argument("--threshold", type=int, help="neuron threshold, for a .pkl that does not record it")
    p.add_argument("--leak", type=int, help="leak shift, for a .pkl that does not record it (default: IF)")
    p.set_defaults(handler=_lazy("livegesture.model.command", "convert"))


def _add_synth(sub: argparse._SubParsersAction) -> None:
    from livegesture.sources.dataset import LIGHTING_CONDITIONS
    from livegesture.synth.gestures import TIMINGS

    p = sub.add_parser("synth", help="generate labelled synthetic DVS Gesture recordings (no camera needed)",
                       description="Render people performing the 11 DVS Gesture classes, emulate a DVS128 "
                                   "(log-intensity contrast events, noise, hot pixels, mains flicker) and write "
                                   "real formats. Deterministic from --seed.")
    synth = p.add_subparsers(dest="synth_command", metavar="WHAT", required=True)

    def common(q: argparse.ArgumentParser, workers: int) -> None:
        q.add_argument("--seed", type=int, default=0, help="random seed: same seed, same bytes (default 0)")
        q.add_argument("--workers", type=int, default=workers, help=f"processes (default {workers})")
        q.add_argument("--timing", choices=TIMINGS, default="dvsgesture",
                       help="dvsgesture: the real dataset's timing (gestures 6-10 s, pauses 1-6 s, some back to "
                            "back, tempo varying per clip, a person fidgeting between gestures); short: the "
                            "original quick timing (gestures 3.5-5 s, short still pauses). Default dvsgesture")
        q.add_argument("--gesture-seconds", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                       help="range of a gesture's labelled duration (default: the timing's, 6 10 or 3.5 5)")
        q.add_argument("--quiet", action="store_true", help="no progress bar")

    d = synth.add_parser("dataset", help="a folder in IBM's DVS Gesture layout (AEDAT 3.1, labels, splits)",
                         description="Write userNN_<lighting>.aedat (AEDAT 3.1) with _labels.csv, "
                                     "trials_to_train.txt and trials_to_test.txt: every class once per "
                                     "recording (times --repetitions), the last --test-users users for testing.")
    d.add_argument("out", help="output folder")
    d.add_argument("--users", type=int, required=True, help="number of subjects")
    d.add_argument("--lightings", nargs="+", default=list(LIGHTING_CONDITIONS), metavar="LIGHTING",
                   help=f"lighting conditions (default all: {' '.join(LIGHTING_CONDITIONS)})")
    d.add_argument("--test-users", type=int, default=None,
                   help="users in the test split (default: IBM's proportion, 6 of 29)")
    d.add_argument("--repetitions", type=int, default=1, help="times each class occurs per recording (default 1)")
    common(d, workers=2)
    d.set_defaults(handler=_lazy("livegesture.synth.command", "dataset"))

    r = synth.add_parser("recording", help="one continuous aedat4 session with a _labels.csv sidecar",
                         description="Write a session of several gestures with pauses as .aedat4, and its "
                                     "labels as <name>_labels.csv (DVS Gesture's format).")
    r.add_argument("out", help="output .aedat4 file")
    r.add_argument("--gestures", nargs="+", default=None, metavar="CLASS",
                   help="classes in order, by name (right-hand-wave) or 1-based number "
                        "(default: every class, shuffled)")
    r.add_argument("--user", type=int, default=1, help="subject number (default 1)")
    r.add_argument("--lighting", default="natural", help="lighting condition (default natural)")
    common(r, workers=2)
    r.set_defaults(handler=_lazy("livegesture.synth.command", "recording"))


def _add_evaluation_common(p: argparse.ArgumentParser, out: str) -> None:
    from livegesture.events import available_cores

    p.add_argument("source", help="a DVS Gesture folder (IBM layout), a folder of .aedat (AEDAT 2.0 or 3.1) / "
                                  ".aedat4 recordings with _labels.csv sidecars, or one such recording")
    p.add_argument("--split", choices=("test", "train", "all"), default="test",
                   help="split of a DVS Gesture folder (default: %(default)s)")
    p.add_argument("--workers", type=int, default=available_cores(),
                   help="processes (default: the cores available, %(default)s)")
    p.add_argument("-o", "--out", default=out, help="folder for the JSON report and the plots (default: %(default)s)")
    p.add_argument("--file-timeout", type=float, default=DEFAULT_FILE_TIMEOUT_S, metavar="SECONDS",
                   help="stop, skip and report a recording whose task runs longer than this (a corrupt file "
                        "stuck in a reader); 0: no limit (default: %(default)s)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="settings file (TOML, table [pipeline]; default $LIVEGESTURE_CONFIG or "
                        "~/.config/livegesture/config.toml)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from livegesture.pipeline.options import add_setting_options

    p = sub.add_parser("eval", help="accuracy of a model on labelled recordings, per sample or streaming",
                       description="Per sample (default): each labelled gesture as the reference deploys it (the "
                                   "model's frames per sample, clear, steps + drain steps, argmax of the output "
                                   "spike counts): the accuracy to compare with published DVS Gesture figures. "
                                   "--streaming: the live pipeline's decisions over whole recordings at the "
                                   "chosen settings, scored over time (accuracy per frame, time to first correct "
                                   "decision, false switches). Prints tables, writes OUT/eval.json and PNG plots; "
                                   "unreadable files and unusable labels are skipped and reported; Ctrl-C keeps "
                                   "what finished.")
    _add_evaluation_common(p, "runs/eval")
    p.add_argument("--streaming", action="store_true", help="score the live pipeline's decisions over time")
    p.add_argument("--float-checkpoint", metavar="PT",
                   help="training checkpoint (best-float.pt) whose torch model is evaluated on the same gestures, "
                        "so that the conversion loss shows")
    add_setting_options(p.add_argument_group("model and live-pipeline settings (default: from the config file; the "
                                             "window settings matter with --streaming)"), live=False)
    _add_on_reset(p)
    p.set_defaults(handler=_lazy("livegesture.evaluate.command", "evaluate"), early=_start_eval_workers)


def _start_eval_workers(args: argparse.Namespace) -> None:
    """``eval`` per sample with its watchdog: start the workers' fork server before the command imports
    and reads what it needs, so that the two overlap (:func:`~livegesture.evaluate.per_sample.start_workers`).
    A bad setting is left to the command, which reports it in its order."""
    if args.streaming or args.file_timeout <= 0:
        return
    from livegesture.evaluate.per_sample import EvaluatorSpec, start_workers
    from livegesture.pipeline.options import settings_from_args

    try:
        spec = EvaluatorSpec.of(settings_from_args(args), args.float_checkpoint)
    except LivegestureError:
        return
    start_workers(spec, args.file_timeout)


def _add_tune(sub: argparse._SubParsersAction) -> None:
    from livegesture.evaluate.grid import DEFAULT_GRID, GRID_PREFIX, SWITCH_VALUES, TUNED_SETTINGS
    from livegesture.pipeline.options import add_setting_options, option_help
    from livegesture.pipeline.settings import SETTING_SPECS

    p = sub.add_parser("tune", help="sweep the live pipeline's window settings; save the best to the config",
                       description="Run the streaming evaluation at every point of a grid of settings, report "
                                   "accuracy against decision latency (table, OUT/tune.json, OUT/pareto.png) and "
                                   "write the best point (the most accurate, a tie within a tenth of a point going to "
                                   "fewer false switches, within the --max-false-switches budget) to the config "
                                   "file the GUI reads. Options not given keep the default grid's values.")
    _add_evaluation_common(p, "runs/tune")
    p.add_argument("--no-write", action="store_true", help="report only; leave the config file alone")
    p.add_argument("--max-false-switches", type=float, default=None, metavar="PER_GESTURE",
                   help="choose the best point among those with at most this many false switches per gesture "
                        "(default: no budget)")
    add_setting_options(p, ("model", "backend"))
    g = p.add_argument_group("grid: values to try per setting")
    for name in TUNED_SETTINGS:
        default = DEFAULT_GRID.get(name)
        if name == "noise_filter":
            shown = " ".join(key for key, value in SWITCH_VALUES.items() if value in (default or ()))
            extra = {"choices": tuple(SWITCH_VALUES)}
        else:
            shown, extra = " ".join(map(str, default or ())), {"type": SETTING_SPECS[name].kind}
        g.add_argument("--" + name.replace("_", "-"), dest=GRID_PREFIX + name, nargs="+", metavar="V", **extra,
                       help=f"{option_help(SETTING_SPECS[name])} (default: {shown or 'from the config'})")
    p.set_defaults(handler=_lazy("livegesture.evaluate.command", "tune"))


SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_info, _add_run, _add_demo, _add_gui,
                                                                         _add_serve, _add_train, _add_convert,
                                                                         _add_synth, _add_eval, _add_tune)


def _lazy(module: str, function: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(args)

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livegesture", description="Real-time DVS gesture recognition on HiAER-Spike CRI hardware.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand: a :class:`LivegestureError` is printed in one line (exit 2); Ctrl-C
    and SIGTERM (what ``timeout``, systemd and CI send) stop it the same way (exit 130), so a
    command keeps and writes what it finished in both cases."""
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if getattr(args, "early", None):
            args.early(args)  # work that overlaps the handler's, started first
        return args.handler(args)
    except LivegestureError as err:
        print(f"livegesture: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
