"""Model files: the .npz format, hs_api pickles, and the restricted unpickler."""

from __future__ import annotations

import json
import os
import pickle
import sys
import types

import numpy as np
import pytest

from livegesture.backends import make_backend, run_sample
from livegesture.backends.network import LayeredNetwork
from livegesture.backends.testing import random_frames, random_network
from livegesture.model.files import (
    CriModel,
    ModelFileError,
    ModelInfo,
    UnsafePickleError,
    load_model,
    save_hs_api_pickle,
    save_model,
)
from livegesture.pipeline.settings import POLICY_SETTINGS, PipelineSettings


@pytest.fixture
def network() -> LayeredNetwork:
    return random_network(np.random.default_rng(0), padding=1, leak=5)


def same_outputs(a, b, seed=1) -> bool:
    """Same spike counts for the same inputs, given as axon indices (A{i} is axon i in both)."""
    frames = random_frames(np.random.default_rng(seed), (2, 15, 15), 10, 0.3)
    inputs = [np.flatnonzero(f) for f in frames]
    return np.array_equal(run_sample(make_backend("fast-sparse", a), inputs), run_sample(make_backend("fast-sparse", b), inputs))


def test_npz_round_trip(tmp_path, network):
    info = ModelInfo(timesteps=10, drain_steps=6, class_names=tuple("abcde"), scale=100,
                     training={"dataset": "synthetic", "accuracy": {"float": 0.9, "integer": 0.9}})
    path = save_model(tmp_path / "m.npz", network, info)
    loaded = load_model(path)
    assert isinstance(loaded.network, LayeredNetwork) and loaded.info == info
    for a, b in zip(loaded.network.layers, network.layers):
        assert np.array_equal(a.weight, b.weight) and a.weight.dtype == np.int16
    assert (loaded.network.threshold, loaded.network.leak, loaded.network.input_shape) == (100, 5, (2, 15, 15))
    assert same_outputs(loaded.network, network)


def rewrite(path, **changes):
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(arrays["metadata"].tobytes())
    for key, value in changes.items():
        if key.startswith("layer"):
            arrays[key] = value
        elif value is None:
            meta.pop(key)
        else:
            meta[key] = value
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("changes, message", [
    ({"threshold": None}, "lacks threshold"),
    ({"format": "other"}, "does not declare format"),
    ({"version": 99}, "unsupported model version"),
    ({"layer1.weight": np.zeros((3, 2, 2, 2), np.int16)}, "has shape"),
    ({"layer2.weight": np.full((3, 3, 3, 3), 40_000, np.int32)}, r"weights must lie in \[-32768, 32767\]"),
    ({"layer1.weight": np.zeros((3, 2, 3, 3), np.float32)}, "must hold integers"),
    ({"class_names": ["one"]}, "1 class names for 5 outputs"),
    ({"threshold": -4}, "threshold must be an integer"),
    ({"threshold": True}, "metadata threshold must be an integer, got True"),
    ({"threshold": 2.5}, "metadata threshold must be an integer in"),
    ({"timesteps": 10**9}, r"metadata timesteps must be an integer in \[1, 1,000\], got 1000000000"),
    ({"timesteps": 0}, r"metadata timesteps must be an integer in \[1, 1,000\], got 0"),
    ({"timesteps": -3}, "metadata timesteps must be an integer in"),
    ({"timesteps": "10"}, "metadata timesteps must be an integer, got '10'"),
    ({"drain_steps": 10**8}, r"metadata drain_steps must be an integer in \[0, 100\]"),
    ({"leak": 99}, r"metadata leak must be an integer in \[0, 62\]"),
    ({"scale": 0}, "metadata scale must be an integer in"),
    ({"class_names": [1, 2, 3, 4, 5]}, "metadata class_names must be strings of 1 to 100 characters, got 1"),
    ({"class_names": ["a", "b", "a", "c", "d"]}, r"metadata class_names must be distinct, \['a'\] repeat"),
    ({"class_names": []}, "metadata class_names must be a non-empty list"),
    ({"input_shape": [2, 5]}, "metadata input_shape must be a list of 3 integers"),
    ({"input_shape": [2, 5, 10**6]}, "metadata input_shape must be an integer in"),
    ({"training": "yesterday"}, "metadata training must be a table"),
    ({"live_window": {"events_per_frame": 500}}, "metadata live_window lacks events_per_frame_range"),
    ({"live_window": {"events_per_frame_range": [300, 900], "events_per_frame": 0}},
     r"metadata live_window events_per_frame must be an integer in \[1, 10,000,000\], got 0"),
    ({"live_window": {"events_per_frame_range": [300, 900], "events_per_frame": 500, "drain_steps": 10**8}},
     "metadata live_window drain_steps must be an integer in"),
    ({"live_window": {"events_per_frame_range": [900, 300], "events_per_frame": 500}}, "invalid live window"),
])
def test_bad_npz_files_name_the_file_and_problem(tmp_path, network, changes, message):
    path = save_model(tmp_path / "m.npz", network, ModelInfo(class_names=tuple("abcde")))
    rewrite(path, **changes)
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(path)
    assert str(err.value).startswith(str(path))


def test_unusable_paths(tmp_path, network):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.npz")
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="unknown model file type"):
        load_model(tmp_path / "m.onnx")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable .npz"):
        load_model(tmp_path / "junk.npz")
    with pytest.raises(ModelFileError, match="must end in .npz"):
        save_model(tmp_path / "m.bin", network, ModelInfo())


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["top", "weight", "neuron_model"])
def test_malicious_pickle_is_refused_and_does_not_execute(tmp_path, where):
    marker = tmp_path / "pwned"
    payload = Exploit(marker)
    data = {"axons": {"A0": [("n0", 1)]}, "connections": {"n0": []}, "outputs": ["n0"], "threshold": 1}
    if where == "top":
        data = payload
    elif where == "weight":
        data["axons"]["A0"] = [("n0", payload)]
    else:
        data["connections"]["n0"] = ([], payload)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(UnsafePickleError, match=r"refusing to load (posix|os|nt)\.system.*--trust-pickle") as err:
        load_model(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


@pytest.fixture
def hs_api_neuron_models(monkeypatch):
    """An hs_api-style neuron model class, importable only while the test runs."""
    module = types.ModuleType("hs_api.neuron_models")

    class IF_neuron:
        def __init__(self, threshold, shift=-17):
            self.threshold = threshold
            self.shift = shift

    IF_neuron.__module__, IF_neuron.__qualname__ = module.__name__, "IF_neuron"
    module.IF_neuron = IF_neuron
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def example_pickle(network, model=None) -> dict:
    """The HiAER-Spike example's layout: axons, connections, outputs (no threshold unless in models)."""
    axons, connections, outputs = network.graph.to_hs_api(model)
    return {"axons": axons, "connections": connections, "outputs": outputs}


def test_example_style_pickle_with_neuron_models_loads_without_importing_them(tmp_path, network, hs_api_neuron_models):
    model = hs_api_neuron_models.IF_neuron(network.threshold)
    path = tmp_path / "DVS_model_config.pkl"
    path.write_bytes(pickle.dumps(example_pickle(network, model)))
    del sys.modules["hs_api.neuron_models"]  # the class is gone: loading must not need it
    loaded = load_model(path, leak=5)  # the example's file does not say its leak
    assert loaded.network.threshold == network.threshold
    assert same_outputs(loaded.network, network)


def test_plain_pickle_needs_a_threshold(tmp_path, network):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(example_pickle(network)))
    with pytest.raises(ModelFileError, match="--threshold"):
        load_model(path)
    assert load_model(path, threshold=network.threshold, leak=5).network.num_synapses == network.num_synapses


def test_numpy_integer_weights_are_allowed_but_not_object_arrays(tmp_path, network):
    data = example_pickle(network)
    data["axons"] = {k: [(t, np.int16(w)) for t, w in v] for k, v in data["axons"].items()}
    path = tmp_path / "np.pkl"
    path.write_bytes(pickle.dumps(data))
    assert load_model(path, threshold=network.threshold, leak=5).network.num_synapses == network.num_synapses
    data["extra"] = np.array([1, 2])
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(UnsafePickleError, match="numpy"):
        load_model(path, threshold=1)


def test_trust_flag_uses_plain_pickle(tmp_path, network):
    data = example_pickle(network)
    data["note"] = Exploit(tmp_path / "trusted")  # a trusted file may hold anything
    path = tmp_path / "trusted.pkl"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(UnsafePickleError):
        load_model(path, threshold=1)
    assert load_model(path, trust_pickle=True, threshold=network.threshold).network.num_outputs == 5


def test_exported_pickle_round_trips_with_threshold_and_leak(tmp_path, network):
    path = save_hs_api_pickle(tmp_path / "net.pkl", network)
    loaded = load_model(path)
    assert isinstance(loaded, CriModel) and (loaded.network.threshold, loaded.network.leak) == (100, 5)
    assert loaded.network.input_shape is None  # 450 axons: not a 2x63x63 frame
    assert same_outputs(loaded.network, network)


@pytest.mark.parametrize("data, message", [
    ([1, 2], "expected a dict with keys axons, connections, outputs"),
    ({"axons": {}, "connections": {}}, "expected a dict"),
    ({"axons": {"A0": [("x", 1)]}, "connections": {"n": []}, "outputs": ["n"], "threshold": 1}, "unknown neuron 'x'"),
    ({"axons": {"A0": [("n", 70000)]}, "connections": {"n": []}, "outputs": ["n"], "threshold": 1}, "must lie in"),
    ({"axons": {"A0": [("n", 1), ("n", 2)]}, "connections": {"n": []}, "outputs": ["n"], "threshold": 1}, "duplicate"),
    ({"axons": {"A0": []}, "connections": {"n": []}, "outputs": ["m"], "threshold": 1}, "not a neuron key"),
    ({"axons": {"A0": 5}, "connections": {"n": []}, "outputs": ["n"], "threshold": 1},
     "axon 'A0': expected a list of .neuron_key, weight. synapses, got int"),
    ({"axons": {"A0": []}, "connections": {"n": "x"}, "outputs": ["n"], "threshold": 1},
     "a connections entry must be a synapse list, got str"),
    ({"axons": {"A0": [("n", 1)]}, "connections": {"n": [], "m": []}, "outputs": ["n", "m", "n"], "threshold": 1},
     "outputs list neuron 'n' more than once"),
    ({"axons": {"A0": []}, "connections": {"n": []}, "outputs": ["n"], "threshold": True},
     "neuron parameter threshold must be an integer, got True"),
    ({"axons": {"A0": []}, "connections": {"n": []}, "outputs": ["n"], "threshold": 1, "leak": 1.5},
     "neuron parameter leak must be an integer in"),
])
def test_bad_pickles_name_the_problem(tmp_path, data, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_shipped_model_is_the_reference_net_and_says_what_it_was_trained_on():
    from livegesture.model.files import DEFAULT_MODEL

    model = load_model(DEFAULT_MODEL)
    network = model.network
    assert isinstance(network, LayeredNetwork) and network.num_neurons == 123_511 and network.num_outputs == 11
    assert [layer.weight.shape for layer in network.layers] == [(100, 2, 3, 3), (100, 100, 3, 3), (100, 100, 3, 3),
                                                                (11, 4900)]
    training = model.info.training
    assert "synthetic" in f"{training['dataset']} {training.get('note', '')}"
    assert training["test_users"] and training["accuracy"]["split"] == "test"
    accuracy = training["accuracy"]
    assert accuracy["loss_points"] == pytest.approx(100 * (accuracy["float"] - accuracy["integer"]))
    assert (model.info.timesteps, model.info.drain_steps) == (10, 6)
    # trained on live windows; the default window and policy were tuned on validation users, not the test ones
    window = model.info.live_window
    assert window.events_per_frame_range[0] <= window.events_per_frame <= window.events_per_frame_range[1]
    assert (window.clear_every, window.drain_steps) == (10, 6)
    validation = training["validation"]
    assert validation["tuned"]["events_per_frame"] == window.events_per_frame
    # the decision policy's defaults are the policy tuned with it
    assert {name: getattr(PipelineSettings(), name) for name in POLICY_SETTINGS} == {
        name: validation["tuned"][name] for name in POLICY_SETTINGS}
    assert not set(training["test_users"]) & set(training["train_users"])
    assert run_sample(make_backend("fast", network), np.zeros((10, 2, 63, 63), np.uint8)).sum() == 0


def shipped_model_trained_on(folder, sensor_size: tuple[int, int]):
    """The shipped model saved again in ``folder``, its metadata saying it was trained on ``sensor_size``."""
    from dataclasses import replace

    from livegesture.model.files import DEFAULT_MODEL

    model = load_model(DEFAULT_MODEL)
    return save_model(folder / "trained-elsewhere.npz", model.network, replace(model.info, sensor_size=sensor_size))


def test_the_training_sensor_is_kept_and_defaults_to_a_dvs128(tmp_path, network):
    from livegesture.model.files import sensor_mismatch

    path = save_model(tmp_path / "m.npz", network, ModelInfo(class_names=tuple("abcde"), sensor_size=(346, 260)))
    info = load_model(path).info
    assert info.sensor_size == (346, 260) and sensor_mismatch((346, 260), info.sensor_size) is None
    assert sensor_mismatch((128, 128), info.sensor_size).startswith(
        "the model was trained on a 346x260 sensor, not this 128x128 one")
    assert sensor_mismatch((640, 480), info.sensor_size).startswith(
        "the model was trained on a 346x260 sensor, not this 640x480 one")
    assert sensor_mismatch((346, 260), (128, 128)) is None  # trained on the field: the ROI maps any sensor to it
    rewrite(path, sensor_size=None)  # files written before the field existed
    assert load_model(path).info.sensor_size == (128, 128)
    rewrite(path, sensor_size=[0, 5])
    with pytest.raises(ModelFileError, match="metadata sensor_size must be an integer in"):
        load_model(path)
