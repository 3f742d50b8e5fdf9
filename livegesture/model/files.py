"""Model files: livegesture's own ``.npz`` format, and hs_api pickles read safely.

**livegesture model (``.npz``)**, read with ``numpy.load(allow_pickle=False)``:

* ``layer{k}.weight`` (k = 1, 2, ...): int16 weights, ``(out, in, kh, kw)`` for a
  convolution, ``(out, in)`` for a linear layer on the flattened ``(C, H, W)`` input;
* ``metadata``: UTF-8 JSON (as a uint8 array) with ``format`` (:data:`FORMAT`),
  ``version``, ``input_shape``, ``layers`` (per layer ``type`` "conv"/"linear", ``shape``,
  and ``stride``, ``padding`` for convolutions), ``threshold`` (integer, fire on
  ``V > threshold``), ``leak`` (shift), ``timesteps`` (frames per sample), ``drain_steps``,
  ``class_names``, ``scale`` (integer units per float unit), ``sensor_size`` of the
  training recordings (DVS128 when absent), free-form ``training`` (provenance: dataset,
  split, epochs, accuracies, ...) and, for a model trained on live windows,
  ``live_window`` (:class:`~livegesture.model.config.LiveWindow`). Every field is checked
  on load against :data:`METADATA_RULES` (type and sane bounds), the field named in the error.

**hs_api pickles** (``.pkl``, e.g. the HiAER-Spike example's ``DVS_model_config.pkl``): a
dict with ``axons``, ``connections``, ``outputs`` (see :mod:`livegesture.backends.network`).
Unpickling can run arbitrary code, so by default :class:`RestrictedUnpickler` refuses every
global except: ``set``/``frozenset`` (how protocols <= 3 store sets), numpy's numeric
``dtype`` and scalar reconstructors (weights written as numpy integers), and classes of
``hs_api`` neuron-model modules, which are *not imported*: an inert
:class:`NeuronModelRecord` takes their place and keeps only plain attributes (the newer
hs_api format stores ``connections[key] = (synapses, IF_neuron(threshold))``). A file the
user trusts can be read with plain ``pickle.load`` (``trust=True``, ``--trust-pickle``).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from livegesture.backends.network import (
    IF_LEAK,
    MAX_LEAK,
    V_MAX,
    ConvLayer,
    CriGraph,
    LayeredNetwork,
    LinearLayer,
    Network,
    NetworkError,
)
from livegesture.backends.base import DRAIN_STEPS, MAX_DRAIN_STEPS
from livegesture.events import DVS128_SIZE, LivegestureError, SensorSize
from livegesture.geometry import FIELD_SIZE
from livegesture.integrate import MAX_EVENTS_PER_FRAME, MAX_FRAMES, TIMESTEPS
from livegesture.model.config import LiveWindow
from livegesture.sources.labels import CLASS_NAMES

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "assets" / "gesture-model.npz"
"""The shipped demo model (trained on the synthetic dataset; see its metadata)."""
FORMAT = "livegesture-cri-model"
VERSION = 1
MODEL_SUFFIX = ".npz"
PICKLE_SUFFIXES = (".pkl", ".pickle")
METADATA_KEY = "metadata"
HS_API_KEYS = ("axons", "connections", "outputs")
THRESHOLD_ATTRIBUTES = ("threshold", "theta", "v_thr", "v_threshold")
"""Attribute names hs_api versions give a neuron model's threshold."""


class ModelFileError(LivegestureError, ValueError):
    """A model file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnsafePickleError(ModelFileError, pickle.UnpicklingError):
    """A pickle that refers to something other than plain data."""


MAX_INPUT_SIDE = 4096
"""Largest channel count or frame side a model's input may declare."""
MAX_KERNEL_STEP = 64
"""Largest convolution stride or padding a model may declare."""
MAX_CLASS_NAME = 100
"""Longest class name (characters)."""

Rule = Callable[[Any], Any]
"""Checks one metadata value: returns it normalised, or raises ``ValueError`` saying what is wrong."""


def integer(low: int, high: int) -> Rule:
    """An integer in ``[low, high]`` (an integral float such as ``10.0`` counts; ``true`` does not)."""
    def check(value: Any) -> int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"must be an integer, got {value!r}")
        if not float(value).is_integer() or not low <= value <= high:
            raise ValueError(f"must be an integer in [{low:,}, {high:,}], got {value!r}")
        return int(value)
    return check


def optional(rule: Rule) -> Rule:
    """``rule``, or absent (``null``)."""
    return lambda value: None if value is None else rule(value)


def shape(length: int, side: Rule) -> Rule:
    """A list of ``length`` values, each passing ``side``."""
    def check(value: Any) -> tuple:
        if not isinstance(value, (list, tuple)) or len(value) != length:
            raise ValueError(f"must be a list of {length} integers, got {value!r}")
        return tuple(side(v) for v in value)
    return check


def class_names(value: Any) -> tuple[str, ...]:
    """Distinct, non-empty strings of at most :data:`MAX_CLASS_NAME` characters."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"must be a non-empty list of names, got {value!r}")
    for name in value:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_CLASS_NAME:
            raise ValueError(f"must be strings of 1 to {MAX_CLASS_NAME} characters, got {name!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"must be distinct, {sorted({n for n in value if value.count(n) > 1})} repeat")
    return tuple(value)


def mapping(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"must be a table, got {value!r}")
    return dict(value)


def table(rules: dict[str, Rule], required: tuple[str, ...]) -> Rule:
    """A table whose entries pass ``rules`` (those in ``required`` must be there; others are dropped)."""
    def check(value: Any) -> dict[str, Any]:
        entries = mapping(value)
        missing = [name for name in required if name not in entries]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        result = {}
        for name, rule in rules.items():
            if name in entries:
                try:
                    result[name] = rule(entries[name])
                except ValueError as err:
                    raise ValueError(f"{name} {err}") from None
        return result
    return check


def live_window(value: Any) -> LiveWindow:
    """A :class:`LiveWindow` table: every count within the bounds of the metadata's own."""
    return LiveWindow.from_dict(LIVE_WINDOW_TABLE(value))


LIVE_WINDOW_TABLE = table({"events_per_frame_range": shape(2, integer(1, MAX_EVENTS_PER_FRAME)),
                           "events_per_frame": integer(1, MAX_EVENTS_PER_FRAME),
                           "clear_every": integer(1, MAX_FRAMES), "drain_steps": integer(0, MAX_DRAIN_STEPS)},
                          required=("events_per_frame_range", "events_per_frame"))

METADATA_RULES: dict[str, Rule] = {
    "timesteps": integer(1, MAX_FRAMES),
    "drain_steps": integer(0, MAX_DRAIN_STEPS),
    "threshold": integer(0, V_MAX),
    "leak": integer(0, MAX_LEAK),
    "scale": optional(integer(1, V_MAX)),
    "input_shape": shape(3, integer(1, MAX_INPUT_SIDE)),
    "class_names": class_names,
    "training": optional(mapping),
    "sensor_size": shape(2, integer(1, MAX_INPUT_SIDE)),
    "live_window": optional(live_window),
    "stride": integer(1, MAX_KERNEL_STEP),
    "padding": integer(0, MAX_KERNEL_STEP),
}
"""The one check of every model's metadata on load (``.npz`` fields, a pickle's threshold and
leak, each layer's ``stride`` and ``padding``): name -> rule. A new field is one line here."""


def checked(path: Path, values: dict[str, Any], where: str = "metadata") -> dict[str, Any]:
    """``values`` normalised by :data:`METADATA_RULES` (names without a rule pass as they are);
    :class:`ModelFileError` naming the field otherwise."""
    result = {}
    for name, value in values.items():
        try:
            result[name] = METADATA_RULES[name](value) if name in METADATA_RULES else value
        except ValueError as err:
            raise ModelFileError(path, f"{where} {name} {err}") from None
    return result


@dataclass(frozen=True)
class ModelInfo:
    """What a network was trained for and on."""

    timesteps: int = TIMESTEPS
    drain_steps: int = DRAIN_STEPS
    class_names: tuple[str, ...] = CLASS_NAMES
    scale: int | None = None
    training: dict[str, Any] = field(default_factory=dict)
    live_window: LiveWindow | None = None
    """The live windows it was trained on; None for a model trained on whole gestures only."""
    sensor_size: SensorSize = DVS128_SIZE
    """The sensor of the training recordings (``train`` reads DVS Gesture: a DVS128)."""


def sensor_mismatch(sensor_size: SensorSize, trained: SensorSize) -> str | None:
    """A warning when a recording's sensor is seen otherwise than the model's ``trained`` one, else None.

    Every sensor reaches the network through its square region of interest mapped to the 128x128
    field (:mod:`livegesture.geometry`), the DVS128 sensor the nets are trained on: for a model
    trained on a DVS128 any sensor is seen as it was trained, and nothing is said. A model
    trained on another sensor saw that sensor's region mapped to the field; a recording from a
    third sensor has another region and scale, so its gestures may appear at another size.
    """
    if tuple(sensor_size) == tuple(trained) or tuple(trained) == FIELD_SIZE:
        return None
    (width, height), (trained_w, trained_h) = sensor_size, trained
    field_w, field_h = FIELD_SIZE
    return (f"the model was trained on a {trained_w}x{trained_h} sensor, not this {width}x{height} one: the "
            f"region of interest of each is mapped to the {field_w}x{field_h} field at another scale, so "
            "gestures may appear at another size and the predictions may be wrong")


@dataclass(frozen=True)
class CriModel:
    """A loaded model: the network and its metadata."""

    network: Network
    info: ModelInfo
    path: Path | None = None


def save_model(path: str | Path, network: LayeredNetwork, info: ModelInfo) -> Path:
    """Write ``network`` and ``info`` as a livegesture ``.npz`` model (see the module docstring)."""
    path = Path(path)
    if path.suffix != MODEL_SUFFIX:
        raise ModelFileError(path, f"a livegesture model file must end in {MODEL_SUFFIX}")
    layers = []
    for layer in network.layers:
        entry: dict[str, Any] = {"type": "conv" if isinstance(layer, ConvLayer) else "linear",
                                 "shape": list(layer.weight.shape)}
        if isinstance(layer, ConvLayer):
            entry.update(stride=layer.stride, padding=layer.padding)
        layers.append(entry)
    metadata = {
        "format": FORMAT, "version": VERSION, "input_shape": list(network.input_shape), "layers": layers,
        "threshold": int(network.threshold), "leak": int(network.leak), "timesteps": info.timesteps,
        "drain_steps": info.drain_steps, "class_names": list(info.class_names), "scale": info.scale,
        "training": info.training, "sensor_size": list(info.sensor_size),
        **({"live_window": info.live_window.to_dict()} if info.live_window else {}),
    }
    arrays = {f"layer{k}.weight": layer.weight for k, layer in enumerate(network.layers, start=1)}
    arrays[METADATA_KEY] = np.frombuffer(json.dumps(metadata, indent=1).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_model(path: str | Path, *, trust_pickle: bool = False, threshold: int | None = None,
               leak: int | None = None) -> CriModel:
    """Load a livegesture ``.npz`` model or an hs_api pickle (``.pkl``).

    For a pickle, ``threshold`` (and ``leak``) apply when the file does not carry them.
    Raises :class:`ModelFileError` naming the file for anything unusable.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such model file")
    suffix = path.suffix.lower()
    if suffix == MODEL_SUFFIX:
        return _load_npz(path)
    if suffix in PICKLE_SUFFIXES:
        return load_hs_api_pickle(path, trust=trust_pickle, threshold=threshold, leak=leak)
    raise ModelFileError(path, f"unknown model file type {path.suffix!r}: expected {MODEL_SUFFIX} "
                               f"(livegesture) or {' / '.join(PICKLE_SUFFIXES)} (hs_api axons/connections)")


def _load_npz(path: Path) -> CriModel:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as err:  # zipfile, OSError, ValueError: all mean "not a readable npz"
        raise ModelFileError(path, f"not a readable .npz file ({err})") from None
    if METADATA_KEY not in arrays:
        raise ModelFileError(path, "missing 'metadata' (not a livegesture model)")
    try:
        meta = json.loads(arrays.pop(METADATA_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(path, f"metadata is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(path, f"metadata does not declare format {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise ModelFileError(path, f"unsupported model version {meta.get('version')!r} (this livegesture reads {VERSION})")
    missing = [k for k in ("input_shape", "layers", "threshold", "leak") if k not in meta]
    if missing:
        raise ModelFileError(path, f"metadata lacks {', '.join(missing)}")
    meta = checked(path, {"timesteps": TIMESTEPS, "drain_steps": DRAIN_STEPS, "class_names": CLASS_NAMES,
                          "sensor_size": DVS128_SIZE, **meta})
    try:
        layers = []
        for k, spec in enumerate(meta["layers"], start=1):
            name = f"layer{k}.weight"
            if name not in arrays:
                raise ModelFileError(path, f"missing array {name!r}")
            weight = arrays.pop(name)
            if list(weight.shape) != list(spec["shape"]):
                raise ModelFileError(path, f"{name} has shape {list(weight.shape)}, metadata says {spec['shape']}")
            if not np.issubdtype(weight.dtype, np.integer):
                raise ModelFileError(path, f"{name} must hold integers, found {weight.dtype}")
            if spec["type"] == "conv":
                steps = checked(path, {"stride": spec["stride"], "padding": spec["padding"]}, f"layer {k}")
                layers.append(ConvLayer(weight, steps["stride"], steps["padding"]))
            elif spec["type"] == "linear":
                layers.append(LinearLayer(weight))
            else:
                raise ModelFileError(path, f"layer {k}: unknown type {spec['type']!r}")
        if arrays:
            raise ModelFileError(path, f"unexpected arrays {sorted(arrays)}")
        network = LayeredNetwork(tuple(layers), threshold=meta["threshold"], leak=meta["leak"],
                                 input_shape=meta["input_shape"])
        info = ModelInfo(timesteps=meta["timesteps"], drain_steps=meta["drain_steps"],
                         class_names=meta["class_names"], scale=meta.get("scale"),
                         training=meta.get("training") or {}, live_window=meta.get("live_window"),
                         sensor_size=meta["sensor_size"])
    except NetworkError as err:
        raise ModelFileError(path, str(err)) from None
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ModelFileError):
            raise
        raise ModelFileError(path, f"malformed metadata ({type(err).__name__}: {err})") from None
    if len(info.class_names) != network.num_outputs:
        raise ModelFileError(path, f"{len(info.class_names)} class names for {network.num_outputs} outputs")
    return CriModel(network, info, path)


class NeuronModelRecord:
    """Stands in for an hs_api neuron-model object in a restricted unpickle: plain attributes only."""

    source = "hs_api"

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict) or not all(
                isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str))) for k, v in state.items()):
            raise pickle.UnpicklingError(f"{self.source}: neuron model state is not plain data")
        self.attributes = dict(state)

    @property
    def threshold(self) -> int | None:
        for name in THRESHOLD_ATTRIBUTES:
            value = getattr(self, "attributes", {}).get(name)
            if value is not None:
                return value
        return None


def _numeric_dtype(*args: object) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.kind not in "biuf":
        raise pickle.UnpicklingError(f"refusing numpy dtype {dtype}")
    return dtype


def _numeric_scalar(dtype: np.dtype, data: bytes | None = None) -> np.generic:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or not isinstance(data, bytes):
        raise pickle.UnpicklingError("refusing a non-numeric numpy scalar")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numbers only (see the module docstring)."""

    ALLOWED = {
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("numpy", "dtype"): _numeric_dtype,
        ("numpy.core.multiarray", "scalar"): _numeric_scalar,
        ("numpy._core.multiarray", "scalar"): _numeric_scalar,
    }
    NEURON_MODEL_PACKAGE = "hs_api"

    def __init__(self, file, path: Path) -> None:
        super().__init__(file)
        self.path = path
        self._records: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        allowed = self.ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        if module.split(".")[0] == self.NEURON_MODEL_PACKAGE and name.isidentifier():
            source = f"{module}.{name}"
            if source not in self._records:
                self._records[source] = type(name, (NeuronModelRecord,), {"source": source})
            return self._records[source]
        raise UnsafePickleError(self.path, f"refusing to load {module}.{name}: this pickle holds more than plain "
                                           "data; load it with --trust-pickle only if you trust where it came from")


def load_hs_api_pickle(path: str | Path, *, trust: bool = False, threshold: int | None = None,
                       leak: int | None = None) -> CriModel:
    """An hs_api ``{axons, connections, outputs}`` pickle as a :class:`CriModel`.

    The threshold comes from the file (neuron models, a ``config`` or ``threshold`` entry)
    or else from ``threshold``; the leak from a ``leak`` entry or ``leak`` or :data:`IF_LEAK`.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = pickle.load(f) if trust else RestrictedUnpickler(f, path).load()
    except ModelFileError:
        raise
    except Exception as err:  # a corrupt pickle can raise almost anything
        reason = " ".join(str(err).split())  # pickle's own messages may span lines
        raise ModelFileError(path, f"cannot unpickle ({type(err).__name__}: {reason})") from None
    if not isinstance(data, dict) or any(key not in data for key in HS_API_KEYS):
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise ModelFileError(path, f"expected a dict with keys {', '.join(HS_API_KEYS)}, found {found}")
    axons, connections, outputs = (data[key] for key in HS_API_KEYS)
    if not isinstance(axons, dict) or not isinstance(connections, dict) or not isinstance(outputs, (list, tuple)):
        raise ModelFileError(path, "axons and connections must be dicts and outputs a list")
    file_threshold = _threshold_in(data, connections, path)
    chosen = file_threshold if file_threshold is not None else threshold
    if chosen is None:
        raise ModelFileError(path, "the file does not say the neuron threshold; pass it (--threshold)")
    neuron = checked(path, {"threshold": chosen, "leak": data.get("leak", leak if leak is not None else IF_LEAK)},
                     "neuron parameter")
    try:
        graph = CriGraph.from_hs_api(axons, connections, outputs, neuron["threshold"], neuron["leak"])
    except NetworkError as err:
        raise ModelFileError(path, str(err)) from None
    names = CLASS_NAMES if graph.num_outputs == len(CLASS_NAMES) else tuple(f"class {i}" for i in range(graph.num_outputs))
    info = ModelInfo(class_names=names, training={"source": f"hs_api pickle {path.name}"})
    return CriModel(graph, info, path)


def _threshold_in(data: dict, connections: dict, path: Path) -> int | None:
    config = data.get("config")
    if isinstance(config, dict) and isinstance(config.get("global_neuron_params"), dict):
        return config["global_neuron_params"].get("v_thr")
    if data.get("threshold") is not None:
        return data["threshold"]
    thresholds = set()
    for value in connections.values():
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], list):
            model = value[1]
            found = model.threshold if isinstance(model, NeuronModelRecord) else _attribute_threshold(model)
            if found is not None:
                thresholds.add(found)
    if len(thresholds) > 1:
        raise ModelFileError(path, f"neurons have different thresholds {sorted(thresholds)[:5]}; CRI has one")
    return thresholds.pop() if thresholds else None


def _attribute_threshold(model: object) -> int | None:
    for name in THRESHOLD_ATTRIBUTES:
        value = getattr(model, name, None)
        if isinstance(value, (int, float, np.integer, np.floating)):
            return value
    return None


def save_hs_api_pickle(path: str | Path, network: Network) -> Path:
    """Write ``{axons, connections, outputs, config, leak}`` for hs_api 0.1.7's ``CRI_network``."""
    path = Path(path)
    axons, connections, outputs = network.graph.to_hs_api()
    data = {"axons": axons, "connections": connections, "outputs": outputs,
            "config": {"neuron_type": "I&F", "global_neuron_params": {"v_thr": int(network.threshold)}},
            "leak": int(network.leak)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path
