"""Training: float net, then quantization-aware fine-tuning, then the CRI model file.

``train`` runs two phases on preprocessed frames (:class:`FrameSet`):

1. **float**: the SpikingJelly net with plain IF neurons, Adam + cosine schedule, loss =
   cross-entropy of the output spike counts CRI would count (``T`` frames + drain steps,
   see :func:`livegesture.model.net.output_counts`), augmentation that suits events;
2. **qat**: from the best float net, the integer net at the chosen scale
   (:mod:`livegesture.model.quantize`), fine-tuned with a smaller learning rate.

Each epoch logs loss and accuracy (train, validation) to the terminal and to
``log.jsonl``; ``checkpoint.pt`` (the last epoch, for ``resume``) and ``best-float.pt`` /
``best-qat.pt`` (best validation accuracy) are kept in the output folder. At the end the
best integer net is exported to ``model.npz`` with the float and integer test accuracies;
the integer accuracy is measured by running the exported network on the fast backend
sample by sample (the deployment path).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from tqdm import tqdm

from livegesture.backends import make_backend
from livegesture.backends.network import IF_LEAK, LayeredNetwork
from livegesture.events import EventFormatError, LivegestureError
from livegesture.geometry import integrate_field
from livegesture.model.files import MODEL_SUFFIX, ModelInfo, load_model, save_model
from livegesture.model.config import MIN_OUTPUT_SPIKES, LiveWindow, TrainConfig
from livegesture.model.net import SpikingNet, counted_steps, output_counts
from livegesture.model.quantize import choose_scale, export, prepare_qat
from livegesture.sources.dataset import DvsGestureFolder, user_of
from livegesture.model.windows import IDLE, DrawnWindows, WindowRange, WindowSampler, load_sessions
from livegesture.sources.labels import CLASS_NAMES, MIRRORED_CLASS, labels_path_for

CHECKPOINT = "checkpoint.pt"
BEST = {"float": "best-float.pt", "qat": "best-qat.pt"}
LOG = "log.jsonl"
MODEL = "model.npz"


class TrainingError(LivegestureError, ValueError):
    """A training run that cannot start or continue as asked."""


@dataclass(frozen=True)
class FrameSet:
    """Preprocessed samples: ``frames`` ``(N, T, 2, 63, 63)`` uint8 0/1, ``labels`` ``(N,)``,
    ``groups`` ``(N,)`` (e.g. the user, to split by), ``names`` (where each came from)."""

    frames: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> FrameSet:
        return FrameSet(self.frames[index], self.labels[index], self.groups[index],
                        tuple(self.names[i] for i in index))

    def save(self, path: Path, fingerprint: str) -> None:
        np.savez(path, frames=np.packbits(self.frames, axis=-1), shape=np.array(self.frames.shape),
                 labels=self.labels, groups=self.groups, names=np.array(self.names), fingerprint=np.array(fingerprint))

    @classmethod
    def load(cls, path: Path, fingerprint: str) -> FrameSet | None:
        """The cached set, or None when missing or made from other data."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["fingerprint"]) != fingerprint:
                    return None
                shape = tuple(data["shape"])
                frames = np.unpackbits(data["frames"], axis=-1, count=shape[-1])
                return cls(frames, data["labels"], data["groups"], tuple(str(n) for n in data["names"]))
        except (OSError, KeyError, ValueError):
            return None


@dataclass(frozen=True)
class TrainResult:
    network: LayeredNetwork
    model_path: Path
    float_accuracy: float
    integer_accuracy: float
    torch_integer_accuracy: float


def load_dataset(root: str | Path, timesteps: int, cache_dir: Path, *, limit: int | None = None,
                 progress: bool = True) -> tuple[FrameSet, FrameSet, dict[str, Any]]:
    """The train and test splits of a DVS Gesture folder as frames (the reference transform:
    ``timesteps`` equal-count frames, 63x63, binarized), cached in ``cache_dir``.

    ``groups`` holds each sample's user (``userNN`` of its recording). ``limit`` keeps the
    first samples of each split (quick runs). Returns ``(train, test, provenance)``.
    """
    folder = DvsGestureFolder(root)
    cache_dir.mkdir(parents=True, exist_ok=True)
    sets = {}
    for split in ("train", "test"):
        trials = folder.trials(split)
        stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns, labels_path_for(p).stat().st_mtime_ns) for p in trials]
        fingerprint = hashlib.sha256(json.dumps([split, timesteps, limit, stamp]).encode()).hexdigest()
        cache = cache_dir / f"frames-{split}-T{timesteps}.npz"
        frame_set = FrameSet.load(cache, fingerprint)
        if frame_set is None:
            frames, labels, users, names = [], [], [], []
            bar = tqdm(total=limit, desc=f"preparing {split} frames", unit="sample", disable=not progress,
                       file=sys.stderr)
            for sample in folder.samples(split):
                frames.append(integrate_field(sample.events, timesteps, sample.sensor_size))
                labels.append(sample.label)
                users.append(user_of(sample.recording))
                names.append(f"{sample.recording.name}#{sample.index}")
                bar.update()
                if limit is not None and len(labels) >= limit:
                    break
            bar.close()
            if not labels:
                raise EventFormatError(folder.root, f"the {split} split holds no labelled gestures")
            frame_set = FrameSet(np.stack(frames), np.array(labels, dtype=np.int64), np.array(users, dtype=np.int64),
                                 tuple(names))
            frame_set.save(cache, fingerprint)
        sets[split] = frame_set
    for err in folder.skipped:
        print(f"livegesture: skipped {err}", file=sys.stderr)
    provenance = {"dataset": str(folder.root.resolve()), "timesteps": timesteps,
                  **{f"{split}_users": sorted(set(s.groups.tolist())) for split, s in sets.items()},
                  **{f"{split}_samples": len(s) for split, s in sets.items()}}
    return sets["train"], sets["test"], provenance


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def mirror(frames: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror a random half of ``(B, T, C, H, W)`` samples left-right and relabel them as the
    class the mirror shows (:data:`MIRRORED_CLASS`). The 63x63 resize is symmetric, so a
    mirrored frame equals the frame of mirrored events."""
    flip = torch.rand(len(labels), generator=generator) < 0.5
    frames = torch.where(flip[:, None, None, None, None], frames.flip(-1), frames)
    mirrored = torch.where(labels == IDLE, labels, torch.tensor(MIRRORED_CLASS)[labels.clamp(min=0)])
    labels = torch.where(flip, mirrored, labels)
    return frames, labels


def augment(frames: torch.Tensor, max_shift: int, drop_rate: float, generator: torch.Generator) -> torch.Tensor:
    """Random translation (one shift per sample, zero fill) and random pixel dropout of
    ``(B, T, C, H, W)`` frames. No time reversal: it swaps clockwise and counter-clockwise."""
    batch, _, _, height, width = frames.shape
    if max_shift:
        padded = F.pad(frames, (max_shift,) * 4)
        shifts = torch.randint(0, 2 * max_shift + 1, (batch, 2), generator=generator).tolist()
        frames = torch.stack([padded[b, :, :, dy:dy + height, dx:dx + width] for b, (dy, dx) in enumerate(shifts)])
    if drop_rate:
        keep = torch.rand(frames.shape, generator=generator) >= drop_rate
        frames = frames * keep.to(frames.dtype)
    return frames


def _logits(net: SpikingNet, frames: torch.Tensor, drain_steps: int) -> torch.Tensor:
    """Output spike counts ``(B, classes)`` of ``(B, T, C, H, W)`` frames."""
    return output_counts(net, frames.transpose(0, 1), drain_steps)


def loss_of(counts: torch.Tensor, labels: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Mean loss of output spike counts ``(B, classes)``: cross-entropy of the counts, or the
    squared error of the firing rates against one-hot targets (SpikingJelly's DVS recipe).
    An :data:`~livegesture.model.windows.IDLE` sample's target is silence: all rates 0 (mse
    only; cross-entropy has no such target). With ``config.class_weights`` the mean is weighted
    by each sample's class weight (an idle sample's: 1), as ``cross_entropy(weight=...)`` does."""
    if config.loss == "ce":
        if bool((labels == IDLE).any()):
            raise TrainingError("idle samples (target: no output spikes) need the mse loss")
        losses = F.cross_entropy(counts, labels, reduction="none")
    else:
        steps = counted_steps(config.timesteps, config.drain_steps, config.net.depth)
        targets = F.one_hot(labels.clamp(min=0), counts.shape[1]).to(counts.dtype) * (labels != IDLE)[:, None]
        losses = F.mse_loss(counts / steps, targets, reduction="none").mean(dim=1)
    if not config.class_weights:
        return losses.mean()
    table = torch.tensor(config.class_weights, dtype=losses.dtype, device=losses.device)
    weights = torch.where(labels == IDLE, torch.ones_like(losses), table[labels.clamp(min=0)])
    return (weights * losses).sum() / weights.sum()


def correct_of(counts: torch.Tensor, labels: torch.Tensor) -> int:
    """Samples decided right: the top count is the class (the reference deployment's argmax),
    or, for an idle sample, fewer than :data:`~livegesture.model.config.MIN_OUTPUT_SPIKES`
    output spikes ("no gesture")."""
    silent = counts.sum(1) < MIN_OUTPUT_SPIKES
    return int(torch.where(labels == IDLE, silent, counts.argmax(1) == labels).sum())


INIT_RATE = 0.1
"""Firing rate every layer is calibrated to before training (no BatchNorm to do it)."""


def calibrate_init(net: SpikingNet, frames: torch.Tensor, drain_steps: int, rate: float = INIT_RATE,
                   rounds: int = 30) -> list[float]:
    """Scale each layer's initial weights, first to last, until its neurons fire at about
    ``rate`` on ``frames`` ``(B, T, C, H, W)``: IF layers without BatchNorm otherwise start
    silent (no spikes, no gradient) or saturated. Returns the measured rates."""
    rates = []
    layers, nodes = net.weight_layers(), net.neurons()
    with torch.no_grad():
        for module, node in zip(layers, nodes):
            for _ in range(rounds):
                spikes: list[torch.Tensor] = []
                hook = node.register_forward_hook(lambda _m, _i, out: spikes.append(out))
                _logits(net, frames, drain_steps)
                hook.remove()
                functional.reset_net(net)
                measured = float(spikes[0].mean())
                if rate / 2 <= measured <= rate * 2:
                    break
                module.weight.mul_(1.5 if measured < rate else 1 / 1.5)
            rates.append(measured)
    return rates


def evaluate(net: SpikingNet, data: FrameSet, config: TrainConfig, device: torch.device) -> tuple[float, float]:
    """(mean loss, accuracy) of ``net`` on ``data``, no augmentation."""
    net.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), config.batch_size):
            frames = torch.from_numpy(data.frames[start:start + config.batch_size]).float().to(device)
            labels = torch.from_numpy(data.labels[start:start + config.batch_size]).long().to(device)
            counts = _logits(net, frames, config.drain_steps)
            total_loss += float(loss_of(counts, labels, config)) * len(labels)
            correct += correct_of(counts, labels)
            functional.reset_net(net)
    return total_loss / max(len(data), 1), correct / max(len(data), 1)


def backend_accuracy(network: LayeredNetwork, data: FrameSet, drain_steps: int) -> float:
    """Accuracy of the deployed loop (reset, frames, drain, argmax) on the fast backend
    (an idle sample is right when silent, as :func:`correct_of`)."""
    backend = make_backend("fast", network)
    counts = torch.from_numpy(backend.run_samples(data.frames, drain_steps))
    return correct_of(counts, torch.from_numpy(data.labels)) / max(len(data), 1)


def split_validation(data: FrameSet, fraction: float, seed: int) -> tuple[FrameSet, FrameSet]:
    """Hold out ``fraction`` of the samples (stratified by class) for model selection."""
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(data.labels):
        members = rng.permutation(np.flatnonzero(data.labels == label))
        held.extend(members[:int(len(members) * fraction)])
    mask = np.zeros(len(data), dtype=bool)
    mask[np.array(held, dtype=np.int64)] = True
    return data.subset(np.flatnonzero(~mask)), data.subset(np.flatnonzero(mask))


class _Log:
    def __init__(self, path: Path, echo: Callable[[str], None]) -> None:
        self.path, self.echo = path, echo

    def __call__(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if "epoch" in record:
            self.echo(f"[{record['phase']}] epoch {record['epoch']:3d}  lr {record['lr']:.2e}  "
                      f"train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.3f}  "
                      f"val loss {record['val_loss']:.4f} acc {record['val_accuracy']:.3f}  "
                      f"({record['seconds']:.0f} s)")


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load(path: Path, device: torch.device) -> dict[str, Any]:
    return torch.load(path, map_location=device, weights_only=True)


def _initial_weights(path: str | Path, config: TrainConfig) -> dict[str, torch.Tensor]:
    """The float weights of an earlier run's checkpoint, or of a model file (its integer
    weights over its threshold: the float net it was exported from, up to rounding), to
    fine-tune from (same architecture)."""
    from livegesture.model.checkpoint import load_checkpoint

    if Path(path).suffix == MODEL_SUFFIX:
        return _model_weights(path, config)
    checkpoint = load_checkpoint(path)
    if checkpoint.scale is not None:
        raise TrainingError(f"{path}: a quantization-aware checkpoint; start from a float one (best-float.pt)")
    if checkpoint.config.net != config.net:
        raise TrainingError(f"{path}: made for the architecture {checkpoint.config.net}, not {config.net}")
    return checkpoint.net.state_dict()


def _model_weights(path: str | Path, config: TrainConfig) -> dict[str, torch.Tensor]:
    network = load_model(path).network
    net = SpikingNet(config.net)
    layers = getattr(network, "layers", ())
    if len(layers) != len(net.weight_layers()) or any(
            tuple(layer.weight.shape) != tuple(module.weight.shape)
            for layer, module in zip(layers, net.weight_layers())):
        raise TrainingError(f"{path}: its network is not the architecture {config.net}")
    with torch.no_grad():
        for layer, module in zip(layers, net.weight_layers()):
            module.weight.copy_(torch.from_numpy(layer.weight.astype(np.float32) / network.threshold))
    return net.state_dict()


def train(train_set: FrameSet, test_set: FrameSet, out_dir: str | Path, config: TrainConfig, *,
          resume: bool = False, init: str | Path | None = None, provenance: dict[str, Any] | None = None,
          progress: bool = True, resample: Callable[[int], FrameSet] | None = None,
          validation: FrameSet | None = None, extra_info: dict[str, Any] | None = None,
          echo: Callable[[str], None] = print) -> TrainResult:
    """Train, fine-tune for CRI and write ``model.npz`` in ``out_dir`` (see the module docstring).

    ``resample(epoch)``, when given, draws each epoch's training samples afresh (live windows,
    :mod:`livegesture.model.windows`); ``validation`` replaces the hold-out of ``train_set``
    for model selection; ``extra_info`` goes into the model file's metadata."""
    if config.epochs < 1 or config.qat_epochs < 0:
        raise TrainingError(f"need at least one float epoch and no negative QAT epochs, got {config.epochs} "
                            f"and {config.qat_epochs}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    if validation is not None:
        fit_set, val_set = train_set, validation
    else:
        fit_set, val_set = split_validation(train_set, config.val_fraction, config.seed)
    validation_note = f"{len(val_set)} validation"
    if not len(val_set):
        largest = int(np.bincount(train_set.labels).max()) if len(train_set) else 0
        validation_note = (f"no validation samples ({config.val_fraction:g} of at most {largest} per class rounds "
                           "to 0: the best epoch is chosen on the training samples; a larger --val-fraction holds "
                           "some out)")
        val_set = fit_set
    if not len(fit_set) or not len(test_set):
        raise TrainingError(f"need training and test samples, got {len(fit_set)} and {len(test_set)}")
    log = _Log(out / LOG, echo)

    state: dict[str, Any] | None = None
    if resume and (out / CHECKPOINT).exists():
        state = _load(out / CHECKPOINT, device)
        if state["config"] != config.to_dict():
            raise TrainingError(f"{out / CHECKPOINT} was made with other settings; start a new output folder "
                                "or resume with the same options")
        echo(f"resuming {state['phase']} phase after epoch {state['epoch']}")
    elif (out / CHECKPOINT).exists() and not resume:
        raise TrainingError(f"{out} already holds a training run; pass --resume to continue it")

    echo(f"training on {device}: {len(fit_set)} samples, {validation_note}, {len(test_set)} test; "
         f"net {config.net}")
    phases = [("float", config.epochs, config.lr), ("qat", config.qat_epochs, config.qat_lr)]
    start_phase = 0 if state is None else [p for p, _, _ in phases].index(state["phase"])
    net = SpikingNet(config.net).to(device)
    if state is None and init is not None:
        net.load_state_dict(_initial_weights(init, config))
        echo(f"starting from the weights of {init}")
    elif state is None:
        sample = torch.from_numpy(fit_set.frames[:2 * config.batch_size]).float().to(device)
        rates = calibrate_init(net, sample, config.drain_steps)
        echo("initial firing rates per layer: " + ", ".join(f"{r:.3f}" for r in rates))
    for phase, epochs, lr in phases[start_phase:]:
        scale = None
        if phase == "qat":
            best_float = _load(out / BEST["float"], device)
            net.load_state_dict(best_float["model"])
            scale = state["scale"] if state is not None and state["phase"] == "qat" else choose_scale(net)
            prepare_qat(net, scale, IF_LEAK)
            echo(f"quantization: scale {scale} (integer threshold {scale}), weights in int16")
        optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
        first_epoch, best = 1, {"val_accuracy": -1.0, "epoch": 0}
        if state is not None and state["phase"] == phase:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            first_epoch, best = state["epoch"] + 1, state["best"]
        generator = torch.Generator().manual_seed(config.seed * 1000 + first_epoch)
        for epoch in range(first_epoch, epochs + 1):
            started = time.monotonic()
            if resample is not None:
                fit_set = resample(epoch + (0 if phase == "float" else config.epochs))
            train_loss, train_acc = _train_epoch(net, fit_set, config, optimizer, device, generator,
                                                 f"{phase} {epoch}/{epochs}", progress)
            val_loss, val_acc = evaluate(net, val_set, config, device)
            record = {"phase": phase, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                      "train_loss": train_loss, "train_accuracy": train_acc, "val_loss": val_loss,
                      "val_accuracy": val_acc, "seconds": time.monotonic() - started}
            scheduler.step()
            if val_acc > best["val_accuracy"]:
                best = {"val_accuracy": val_acc, "epoch": epoch}
                _save(out / BEST[phase], {"model": net.state_dict(), "scale": scale, "epoch": epoch,
                                          "config": config.to_dict()})
            log(record)
            state = {"phase": phase, "epoch": epoch, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "best": best, "scale": scale, "config": config.to_dict()}
            _save(out / CHECKPOINT, state)
        state = None
        echo(f"[{phase}] best validation accuracy {best['val_accuracy']:.3f} at epoch {best['epoch']}")

    return _finish(net, test_set, out, config, device, log, provenance or {}, echo, extra_info or {})


def _train_epoch(net: SpikingNet, data: FrameSet, config: TrainConfig, optimizer: torch.optim.Optimizer,
                 device: torch.device, generator: torch.Generator, title: str, progress: bool) -> tuple[float, float]:
    net.train()
    order = torch.randperm(len(data), generator=generator).numpy()
    total_loss, correct, seen = 0.0, 0, 0
    batches = range(0, len(order), config.batch_size)
    bar = tqdm(batches, desc=title, unit="batch", leave=False, disable=not progress, file=sys.stderr)
    for start in bar:
        index = np.sort(order[start:start + config.batch_size])
        frames = augment(torch.from_numpy(data.frames[index]).float(), config.max_shift, config.drop_rate, generator)
        labels = torch.from_numpy(data.labels[index]).long()
        if config.mirror:
            frames, labels = mirror(frames, labels, generator)
        counts = _logits(net, frames.to(device), config.drain_steps)
        loss = loss_of(counts, labels.to(device), config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        functional.reset_net(net)
        total_loss += float(loss.detach()) * len(index)
        correct += correct_of(counts.detach().cpu(), labels)
        seen += len(index)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
    return total_loss / max(seen, 1), correct / max(seen, 1)


def _finish(net: SpikingNet, test_set: FrameSet, out: Path, config: TrainConfig, device: torch.device, log: _Log,
            provenance: dict[str, Any], echo: Callable[[str], None], extra_info: dict[str, Any]) -> TrainResult:
    """Test accuracies of the best float and best integer nets; write model.npz."""
    float_net = SpikingNet(config.net).to(device)
    float_net.load_state_dict(_load(out / BEST["float"], device)["model"])
    _, float_acc = evaluate(float_net, test_set, config, device)

    best_qat = _load(out / BEST["qat"], device) if (out / BEST["qat"]).exists() else None
    scale = best_qat["scale"] if best_qat else choose_scale(float_net)
    qat_net = SpikingNet(config.net).to(device)
    qat_net.load_state_dict(float_net.state_dict())
    prepare_qat(qat_net, scale, IF_LEAK)
    if best_qat:
        qat_net.load_state_dict(best_qat["model"])
    _, torch_int_acc = evaluate(qat_net, test_set, config, device)
    network = export(qat_net.cpu(), scale, IF_LEAK)
    int_acc = backend_accuracy(network, test_set, config.drain_steps)

    accuracy = {"split": "test", "samples": len(test_set), "float": float_acc, "integer": int_acc,
                "integer_torch": torch_int_acc, "loss_points": 100 * (float_acc - int_acc)}
    training = {**provenance, "config": config.to_dict(), "accuracy": accuracy,
                "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "device": str(device),
                "torch": torch.__version__}
    info = ModelInfo(timesteps=config.timesteps, drain_steps=config.drain_steps, class_names=CLASS_NAMES[:config.net.num_classes]
                     if config.net.num_classes <= len(CLASS_NAMES) else tuple(map(str, range(config.net.num_classes))),
                     scale=scale, training=training, **extra_info)
    path = save_model(out / MODEL, network, info)
    log({"phase": "final", **accuracy})
    echo(f"test accuracy: float {100 * float_acc:.2f} %, integer (CRI, fast backend) {100 * int_acc:.2f} % "
         f"({accuracy['loss_points']:+.2f} points lost); model written to {path}")
    return TrainResult(network, path, float_acc, int_acc, torch_int_acc)


def frame_set(windows: DrawnWindows) -> FrameSet:
    return FrameSet(windows.frames, windows.labels, windows.groups, windows.names)


def train_live(root: str | Path, out_dir: str | Path, config: TrainConfig, window: WindowRange, *,
               windows_per_epoch: int, validation_windows: int, provenance: dict[str, Any] | None = None,
               **options: Any) -> TrainResult:
    """Train on live windows (:mod:`livegesture.model.windows`) of a DVS Gesture folder's
    recordings: fresh windows from the train split every epoch; a fixed draw of windows from
    the test split's recordings (other users) selects the best epoch and gives the test accuracy.
    ``options`` go to :func:`train`."""
    if window.frames != config.timesteps or window.drain_steps != config.drain_steps:
        raise TrainingError(f"the windows ({window.frames} frames + {window.drain_steps} drain steps) must match "
                            f"the training's {config.timesteps} + {config.drain_steps}")
    folder = DvsGestureFolder(root)
    train_sessions, test_sessions = load_sessions(folder, "train"), load_sessions(folder, "test")
    for err in folder.skipped:
        print(f"livegesture: skipped {err}", file=sys.stderr)
    if not train_sessions or not test_sessions:
        raise TrainingError(f"{root}: live-window training needs recordings in both splits")
    sampler = WindowSampler(train_sessions, window)
    held_out = frame_set(WindowSampler(test_sessions, window).draw(validation_windows, seed=config.seed + 10_000))
    low, high = window.events_per_frame
    live_window = LiveWindow((low, high), int(round(np.sqrt(low * high))), window.frames, window.drain_steps)
    provenance = {**(provenance or {}), "dataset": str(Path(root).resolve()), "samples": "live windows",
                  "window_range": asdict(window), "windows_per_epoch": windows_per_epoch,
                  "train_users": sorted({s.group for s in train_sessions}),
                  "test_users": sorted({s.group for s in test_sessions}), "test_samples": len(held_out)}
    return train(frame_set(sampler.draw(windows_per_epoch, seed=config.seed)), held_out, out_dir, config,
                 provenance=provenance, validation=held_out,
                 resample=lambda epoch: frame_set(sampler.draw(windows_per_epoch, seed=config.seed * 1000 + epoch)),
                 extra_info={"live_window": live_window}, **options)
