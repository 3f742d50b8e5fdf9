"""The sensor geometry policy: a square region of interest mapped to the 128x128 field; the
identity on a DVS128; >= 95 % of the events inside the ROI reach the network's frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from livegesture.events import DVS128_SIZE, make_events
from livegesture.geometry import FIELD_SIZE, FieldMapping, GeometryError, RegionOfInterest, integrate_field
from livegesture.integrate import NET_INPUT_SIZE, integrate_sample
from livegesture.pipeline.frames import FrameBuilder
from livegesture.pipeline.settings import PipelineSettings
from livegesture.sources import read_recording

SENSORS = [(240, 180), (320, 240), (346, 260), (640, 480)]
REAL_DAVIS346 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis346_sample.aedat4"


def random_events(n: int, sensor_size, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    width, height = sensor_size
    return make_events(np.sort(rng.integers(0, 10_000_000, n)), rng.integers(0, width, n), rng.integers(0, height, n),
                       rng.integers(0, 2, n))


def read_by_reference(extent: int) -> np.ndarray:
    """Which of ``extent`` input rows F.interpolate (bilinear, align_corners=False) gives a non-zero
    weight when resizing to 63: one one-hot row at a time, through torch itself."""
    read = np.zeros(extent, dtype=bool)
    for row in range(extent):
        image = torch.zeros(1, 1, extent, 1)
        image[0, 0, row, 0] = 1
        read[row] = bool((F.interpolate(image, size=(NET_INPUT_SIZE, 1), mode="bilinear",
                                        align_corners=False) > 0).any())
    return read


def test_a_dvs128_is_the_identity_bit_for_bit():
    events = random_events(50_000, DVS128_SIZE)
    mapping = FieldMapping(DVS128_SIZE)
    assert mapping.identity and mapping(events) is events
    assert np.array_equal(integrate_field(events, 10, DVS128_SIZE), integrate_sample(events, 10, DVS128_SIZE))


@pytest.mark.parametrize("sensor_size", SENSORS)
def test_every_roi_pixel_lands_on_one_field_pixel_with_the_aspect_kept(sensor_size):
    width, height = sensor_size
    roi = RegionOfInterest.centered(sensor_size)
    assert roi.side == height and roi.x == (width - height) // 2 and roi.y == 0
    xs, ys = np.meshgrid(np.arange(roi.x, roi.x + roi.side), np.arange(roi.y, roi.y + roi.side))
    grid = make_events(np.zeros(xs.size, dtype=np.int64), xs.ravel(), ys.ravel(), np.ones(xs.size))
    mapped = FieldMapping(sensor_size)(grid)
    assert len(mapped) == len(grid)  # nothing inside the ROI is dropped
    per_pixel = np.bincount(mapped["y"].astype(int) * 128 + mapped["x"], minlength=128 * 128).reshape(128, 128)
    low, high = roi.side // 128, -(-roi.side // 128)
    assert per_pixel.min() >= low * low and per_pixel.max() <= high * high  # no gaps, no pile-ups
    # the same scale on both axes: a square of the sensor stays a square
    assert np.array_equal(per_pixel, per_pixel.T)


@pytest.mark.parametrize("sensor_size", SENSORS)
def test_at_least_95_percent_of_the_roi_events_reach_the_frame(sensor_size):
    events = random_events(400_000, sensor_size, seed=sum(sensor_size))
    mapping = FieldMapping(sensor_size)
    roi = mapping.roi
    inside = ((events["x"] >= roi.x) & (events["x"] < roi.x + roi.side)
              & (events["y"] >= roi.y) & (events["y"] < roi.y + roi.side))
    mapped = mapping(events)
    assert len(mapped) == int(inside.sum()) and mapping.events_outside == int((~inside).sum())
    read = read_by_reference(FIELD_SIZE[0])
    reaching = read[mapped["x"]] & read[mapped["y"]]
    assert reaching.mean() >= 0.95
    # the policy it replaces: the whole sensor resized to 63x63 reads a small part of it
    old = read_by_reference(sensor_size[0])[events["x"]] & read_by_reference(sensor_size[1])[events["y"]]
    assert old.mean() < 0.6


def test_the_frame_builder_integrates_the_field():
    sensor_size = (346, 260)
    events = random_events(30_000, sensor_size, seed=3)
    settings = PipelineSettings(events_per_frame=1000, frames_per_window=10, roi=(20, 10, 200))
    builder = FrameBuilder(sensor_size, settings)
    frames = [frame for lo in range(0, len(events), 777) for frame in builder.push(events[lo:lo + 777])]
    mapped = FieldMapping(sensor_size, (20, 10, 200))(events)
    expected = integrate_sample(mapped[:10_000], 10, FIELD_SIZE)
    assert np.array_equal(np.stack([f.data for f in frames[:10]]), expected)
    assert builder.events_integrated == len(mapped)


@pytest.mark.parametrize("roi, problem", [((0, 0, 261), "does not fit the 346x260 sensor"),
                                          ((300, 0, 100), "does not fit"), ((1, 2), "X Y SIDE")])
def test_a_roi_that_does_not_fit_is_refused(roi, problem):
    with pytest.raises(GeometryError, match=problem):
        FieldMapping((346, 260), roi)


def test_a_real_davis346_recording_reaches_the_frame():
    if not REAL_DAVIS346.is_file():
        pytest.skip("../shared/data is not present")
    recording = read_recording(REAL_DAVIS346)
    mapped = FieldMapping(recording.sensor_size)(recording.events)
    read = read_by_reference(FIELD_SIZE[0])
    assert len(mapped) > 0.9 * len(recording.events)  # the scene lies mostly in the centred square
    assert (read[mapped["x"]] & read[mapped["y"]]).mean() >= 0.95
