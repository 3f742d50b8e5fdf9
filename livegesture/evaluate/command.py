"""Handlers of ``livegesture eval`` and ``livegesture tune``.

The model, the backend and the pipeline settings come from the config file the GUI reads
(``--config`` or the default), overridden by the options, as for ``livegesture run``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from livegesture.events import LivegestureError
from livegesture.evaluate.per_sample import EvaluatorSpec, evaluate_samples
from livegesture.evaluate.recordings import Inventory, find_recordings
from livegesture.evaluate.report import (
    plot_confusion,
    plot_onset_curve,
    plot_pareto,
    prepare_output,
    print_tables,
    print_warnings,
    report_console,
    sample_tables,
    setting_text,
    stream_tables,
    tune_tables,
    write_json,
)
from livegesture.evaluate.streaming import evaluate_stream
from livegesture.evaluate.grid import DEFAULT_GRID, GRID_PREFIX, SWITCH_VALUES, TUNED_SETTINGS, Grid
from livegesture.evaluate.tune import tune as run_tune
from livegesture.pipeline.engine import backend_label
from livegesture.pipeline.options import settings_from_args
from livegesture.pipeline.settings import PipelineSettings, save_settings
from livegesture.sources.labels import NO_GESTURE_NAME

EVAL_JSON, CONFUSION_PNG, ONSET_PNG = "eval.json", "confusion.png", "onset.png"
TUNE_JSON, PARETO_PNG = "tune.json", "pareto.png"
INTERRUPTED_RC = 130
NOTHING_EVALUATED_RC = 1
"""Exit status when not one gesture (per sample) or recording (streaming) could be evaluated."""


def _workers(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise LivegestureError(f"--workers must be at least 1, got {args.workers}")
    return args.workers


def _bar(total: int, unit: str, args: argparse.Namespace) -> tqdm:
    return tqdm(total=total, unit=unit, desc=args.command, disable=args.no_progress, file=sys.stderr)


def _title(settings: PipelineSettings, inventory: Inventory) -> str:
    return f"{Path(settings.model).name} on {Path(inventory.source).name} ({backend_label(settings)})"


def _timeout(args: argparse.Namespace) -> float | None:
    """The watchdog's limit per task (``--file-timeout``; 0 for none)."""
    if args.file_timeout < 0:
        raise LivegestureError(f"--file-timeout must be 0 (no limit) or more, got {args.file_timeout:g}")
    return args.file_timeout or None


def evaluate(args: argparse.Namespace) -> int:
    """``livegesture eval``: per-sample (default) or streaming accuracy on labelled recordings.

    The output folder is checked first and ``eval.json`` is written before any table or plot,
    so that a run's results are never lost to a problem found at its end."""
    prepare_output(Path(args.out), (EVAL_JSON, CONFUSION_PNG, ONSET_PNG))
    inventory = find_recordings(args.source, args.split, args.on_reset)
    settings = settings_from_args(args)
    if args.streaming:
        if args.float_checkpoint:
            raise LivegestureError("--float-checkpoint is for the per-sample mode (the reference deployment)")
        return _streaming(args, inventory, settings)
    return _per_sample(args, inventory, settings)


def _per_sample(args: argparse.Namespace, inventory: Inventory, settings: PipelineSettings) -> int:
    spec = EvaluatorSpec.of(settings, args.float_checkpoint)
    with _bar(inventory.samples, "sample", args) as bar:
        evaluation = evaluate_samples(inventory, spec, workers=_workers(args), progress=bar, timeout_s=_timeout(args))
    out = Path(args.out)
    report = write_json(out / EVAL_JSON, evaluation.to_dict())
    console = report_console()
    print_warnings(console, evaluation.warnings)
    print_tables(console, sample_tables(evaluation, inventory.description))
    figure = plot_confusion(evaluation.scores, evaluation.class_names, out / CONFUSION_PNG,
                            f"per sample: {_title(settings, inventory)}")
    console.print(f"written {report} and {figure}")
    if evaluation.not_run:
        return INTERRUPTED_RC
    return _nothing_evaluated(console, not evaluation.results, f"{evaluation.skipped_samples} gestures skipped")


def _nothing_evaluated(console, nothing: bool, skipped: str) -> int:
    """The exit status: :data:`NOTHING_EVALUATED_RC` (said on the console) when nothing was evaluated."""
    if nothing:
        console.print(f"nothing was evaluated ({skipped}; see the skipped table)")
        return NOTHING_EVALUATED_RC
    return 0


def _streaming(args: argparse.Namespace, inventory: Inventory, settings: PipelineSettings) -> int:
    with _bar(len(inventory.recordings), "recording", args) as bar:
        evaluation = evaluate_stream(inventory, settings, workers=_workers(args), progress=bar,
                                     timeout_s=_timeout(args))
    out = Path(args.out)
    report = write_json(out / EVAL_JSON, evaluation.to_dict())
    console = report_console()
    print_warnings(console, evaluation.warnings)
    print_tables(console, stream_tables(evaluation, inventory.description))
    title = f"streaming: {_title(settings, inventory)}"
    score = evaluation.score
    figures = [plot_confusion(score.decisions, [*evaluation.class_names, NO_GESTURE_NAME], out / CONFUSION_PNG, title),
               plot_onset_curve(score.curve, out / ONSET_PNG, title)]
    console.print(f"written {report}, {figures[0]} and {figures[1]}")
    if evaluation.not_run:
        return INTERRUPTED_RC
    return _nothing_evaluated(console, not score.gestures,
                              f"{sum(s.samples for r in evaluation.recordings for s in r.skipped)} gestures skipped")


def grid_from_args(args: argparse.Namespace) -> Grid:
    """The grid options given, the default grid's values for the others."""
    values = {}
    for name in TUNED_SETTINGS:
        given = getattr(args, GRID_PREFIX + name, None)
        if name == "noise_filter" and given:
            given = [SWITCH_VALUES[value] for value in given]
        values[name] = given or DEFAULT_GRID.get(name, ())
    return Grid.of(values)


def _switch_budget(args: argparse.Namespace) -> float | None:
    """``--max-false-switches`` (None: no budget)."""
    if args.max_false_switches is not None and args.max_false_switches < 0:
        raise LivegestureError(f"--max-false-switches must be 0 or more, got {args.max_false_switches:g}")
    return args.max_false_switches


def tune(args: argparse.Namespace) -> int:
    """``livegesture tune``: sweep the window settings, report accuracy vs latency, save the best."""
    prepare_output(Path(args.out), (TUNE_JSON, PARETO_PNG))
    budget = _switch_budget(args)
    inventory = find_recordings(args.source, args.split)
    base = settings_from_args(args)
    grid = grid_from_args(args)
    with _bar(len(grid.changes()) * len(inventory.recordings), "run", args) as bar:
        result = run_tune(inventory, base, grid, workers=_workers(args), progress=bar, timeout_s=_timeout(args),
                          max_false_switches=budget)
    out = Path(args.out)
    report = write_json(out / TUNE_JSON, result.to_dict())
    console = report_console()
    print_tables(console, tune_tables(result, inventory.description))
    figure = plot_pareto(result, out / PARETO_PNG, f"tuning: {_title(base, inventory)}")
    console.print(f"written {report} and {figure}")
    if result.not_run:
        console.print(f"interrupted: {result.not_run} runs not done; the config file is left as it is")
        return INTERRUPTED_RC
    if result.best is None and result.points:
        console.print(f"no grid point has at most {result.max_false_switches:g} false switches per "
                      "gesture; the config file is left as it is")
        return NOTHING_EVALUATED_RC
    if result.best is None:
        raise LivegestureError("no grid point could be evaluated")
    best = result.points[result.best]
    choice = ", ".join(f"{name}={setting_text(value)}" for name, value in best.changes.items())
    if args.no_write:
        console.print(f"best: {choice} (not written: --no-write)")
    else:
        console.print(f"best: {choice}; written to {save_settings(best.settings, args.config)}")
    return 0
