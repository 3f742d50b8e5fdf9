"""Fuzzing the file parsers (AEDAT 3.1, AEDAT 2.0, labels, TOML config, models): whatever the
bytes, a parser returns a valid result or raises a :class:`LivegestureError` (a one-line message
for the user), never another exception.

Inputs are random bytes, and valid files mutated (bytes overwritten, cut short, spliced),
which reach much deeper than random bytes; the examples are few and small, so the whole
module runs in seconds.
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livegesture.backends.testing import random_network
from livegesture.events import EVENT_DTYPE, LivegestureError, make_events
from livegesture.model.files import ModelInfo, load_model, save_hs_api_pickle, save_model
from livegesture.pipeline.settings import PipelineSettings, load_settings
from livegesture.sources.aedat2 import IncompleteRecordingWarning, read_aedat2, write_aedat2
from livegesture.sources.aedat3 import read_aedat3, write_aedat3
from livegesture.sources.labels import GestureSegment, read_labels, write_labels

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=True)


@st.composite
def mutated(draw, valid: bytes) -> bytes:
    """``valid`` with a few bytes overwritten, then possibly cut short or with a chunk repeated."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data) - 1))
        chunk = draw(st.binary(min_size=1, max_size=16))
        data[at:at + len(chunk)] = chunk
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    if cut is not None:
        data = data[:cut]
    if data and draw(st.booleans()):
        lo = draw(st.integers(0, len(data) - 1))
        data[lo:lo] = data[lo:lo + draw(st.integers(1, 64))]
    return bytes(data)


def file_inputs(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), mutated(valid))


def parses_or_says_why(parse, path: Path, data: bytes):
    """Write ``data`` to ``path`` and parse it: a result, or None after a LivegestureError."""
    path.write_bytes(data)
    try:
        return parse(path)
    except LivegestureError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return None


def valid_aedat3(folder: Path) -> bytes:
    n = 300
    path = folder / "valid.aedat"
    write_aedat3(path, make_events(np.arange(n) * 7, np.arange(n) % 128, np.arange(n) % 97, np.arange(n) % 2),
                 packet_events=64)
    return path.read_bytes()


def assert_valid_recording(result) -> None:
    """Events of the right type, in time order, inside the sensor."""
    width, height = result.sensor_size
    assert result.events.dtype == EVENT_DTYPE
    assert np.all(np.diff(result.events["t"]) >= 0)
    assert np.all(result.events["x"] < width) and np.all(result.events["y"] < height)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def aedat3_bytes(folder) -> bytes:
    return valid_aedat3(folder)


def test_aedat3_reader(folder, aedat3_bytes):
    @FUZZ
    @given(data=file_inputs(aedat3_bytes))
    def check(data):
        result = parses_or_says_why(read_aedat3, folder / "fuzz.aedat", data)
        if result is not None:
            assert_valid_recording(result)
    check()


def valid_aedat2(folder: Path, chip_class: str) -> bytes:
    n = 300
    path = folder / "valid2.aedat"
    write_aedat2(path, make_events(np.arange(n) * 7, np.arange(n) % 128, np.arange(n) % 97, np.arange(n) % 2),
                 chip_class)
    return path.read_bytes()


@pytest.mark.parametrize("chip_class", ["ch.unizh.ini.jaer.chip.retina.DVS128", "eu.seebetter.ini.chips.davis.Davis346B"],
                         ids=["DVS128", "DAVIS346"])
def test_aedat2_reader(folder, chip_class):
    @FUZZ
    @given(data=file_inputs(valid_aedat2(folder, chip_class)))
    def check(data):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IncompleteRecordingWarning)  # a cut record: said, and read
            result = parses_or_says_why(read_aedat2, folder / "fuzz2.aedat", data)
        if result is not None:
            assert_valid_recording(result)
    check()


LABEL_CELLS = st.one_of(st.integers(-5, 2**64), st.text(max_size=6), st.just(""))


def test_label_reader(folder):
    path = folder / "valid_labels.csv"
    write_labels(path, [GestureSegment(0, 0, 1_000), GestureSegment(10, 1_000, 5_000)])
    rows = st.lists(st.lists(LABEL_CELLS, max_size=4).map(lambda cells: ",".join(map(str, cells))), max_size=5)
    texts = rows.map(lambda lines: "class,startTime_usec,endTime_usec\n" + "\n".join(lines))
    inputs = st.one_of(file_inputs(path.read_bytes()), texts.map(str.encode),
                       texts.map(lambda text: b"\xef\xbb\xbf" + text.encode("utf-16-le", "replace")))

    @FUZZ
    @given(data=inputs)
    def check(data):
        segments = parses_or_says_why(read_labels, folder / "fuzz_labels.csv", data)
        for segment in segments or ():
            assert 0 <= segment.label < 11 and 0 <= segment.start_us < segment.end_us < 2**63
    check()


TOML_VALUES = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True), st.booleans(), st.text(max_size=8),
                        st.lists(st.integers(), max_size=3))


def test_config_reader(folder):
    fields = sorted(PipelineSettings.__dataclass_fields__)
    tables = st.dictionaries(st.one_of(st.sampled_from(fields), st.text(min_size=1, max_size=5)), TOML_VALUES,
                             max_size=4)

    def toml(table: dict) -> bytes:
        import tomli_w

        return tomli_w.dumps({"pipeline": table}).encode()

    valid = toml({"clear_every": 10, "speed": 2.0})
    inputs = st.one_of(file_inputs(valid), tables.map(toml))

    @FUZZ
    @given(data=inputs)
    def check(data):
        result = parses_or_says_why(load_settings, folder / "fuzz.toml", data)
        assert result is None or isinstance(result, PipelineSettings)
    check()


JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(),
                                     st.text(max_size=5)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=8)
METADATA_FIELDS = ("input_shape", "layers", "threshold", "leak", "timesteps", "drain_steps", "class_names", "scale",
                   "training", "sensor_size", "live_window", "version", "format")


def test_model_reader(folder):
    network = random_network(np.random.default_rng(0), channels=2, conv_layers=1, input_shape=(2, 9, 9),
                             num_classes=3)
    valid_path = save_model(folder / "valid.npz", network, ModelInfo(class_names=("a", "b", "c")))
    with np.load(valid_path) as data:
        arrays = dict(data)
    metadata = json.loads(arrays["metadata"].tobytes())

    def npz_with(changes: dict) -> bytes:
        meta = {**metadata, **changes}
        buffer = io.BytesIO()
        np.savez(buffer, **{**arrays, "metadata": np.frombuffer(json.dumps(meta).encode(), np.uint8)})
        return buffer.getvalue()

    changed = st.dictionaries(st.sampled_from(METADATA_FIELDS), JSON_VALUES, min_size=1, max_size=3).map(npz_with)
    inputs = st.one_of(file_inputs(valid_path.read_bytes()), changed)

    @FUZZ
    @given(data=inputs)
    def check(data):
        model = parses_or_says_why(load_model, folder / "fuzz.npz", data)
        if model is not None:
            assert len(model.info.class_names) == model.network.num_outputs
            assert 1 <= model.info.timesteps <= 1000 and 0 <= model.info.drain_steps <= 100
    check()


def test_hs_api_pickle_reader(folder):
    network = random_network(np.random.default_rng(1), channels=2, conv_layers=1, input_shape=(2, 5, 5),
                             num_classes=2)
    valid = save_hs_api_pickle(folder / "valid.pkl", network).read_bytes()
    data = pickle.loads(valid)
    keys = ("axons", "connections", "outputs", "config", "leak", "threshold")
    changed = st.dictionaries(st.sampled_from(keys), JSON_VALUES, min_size=1, max_size=3).map(
        lambda changes: pickle.dumps({**data, **changes}))
    inputs = st.one_of(file_inputs(valid), changed)

    @FUZZ
    @given(data=inputs)
    def check(data):
        model = parses_or_says_why(load_model, folder / "fuzz.pkl", data)
        assert model is None or model.network.num_outputs == len(model.info.class_names)
    check()
