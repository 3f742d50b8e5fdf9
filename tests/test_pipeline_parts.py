"""The pipeline's small parts: the engine switch's result, the figures and the recent events."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.backends.testing import random_network
from livegesture.events import make_events
from livegesture.pipeline.engine import PredictionEngine
from livegesture.pipeline.recent import RecentEvents
from livegesture.pipeline.settings import PipelineSettings
from livegesture.pipeline.stats import LatencyWindow, PipelineMeter
from livegesture.pipeline.switch import RunningModel, update_engine

SETTINGS = PipelineSettings(backend="fast", clear_every=4, drain_steps=2)


@pytest.fixture
def running():
    network = random_network(np.random.default_rng(2), channels=3, input_shape=(2, 63, 63), num_classes=4)
    model = RunningModel.of(network, SETTINGS.model)
    engine = PredictionEngine(network, SETTINGS)
    yield engine, model
    engine.close()


def test_same_backend_and_model_reconfigure_in_place(running):
    engine, model = running
    result = update_engine(engine, model, SETTINGS.replace(clear_every=6, events_per_frame=300))
    assert result.engine is engine and result.model is model and result.error is None
    assert engine.settings.clear_every == 6


def test_another_backend_is_a_new_engine_and_the_old_one_is_closed(running):
    engine, model = running
    result = update_engine(engine, model, SETTINGS.replace(backend="fast-sparse"))
    try:
        assert result.engine is not engine and result.engine.backend_name == "fast-sparse"
        assert result.model is model and result.error is None and engine.instances == 0
    finally:
        result.engine.close()


def test_a_refused_change_keeps_the_running_engine_with_the_other_settings(running, tmp_path):
    engine, model = running
    missing = tmp_path / "missing.npz"
    result = update_engine(engine, model, SETTINGS.replace(model=str(missing), clear_every=8))
    assert result.engine is engine and result.model is model
    assert result.error.startswith("settings: ") and str(missing) in result.error
    assert engine.settings.clear_every == 8 and engine.settings.model == SETTINGS.model
    refused = update_engine(engine, model, SETTINGS.replace(backend="cri"))  # no CRI hardware here
    assert refused.engine is engine and "CRI" in refused.error and engine.settings.backend == "fast"


def test_default_class_names():
    network = random_network(np.random.default_rng(1), num_classes=11)
    assert RunningModel.of(network, "m.npz").class_names[0] == "hand clapping"
    assert RunningModel.of(random_network(np.random.default_rng(1)), "m.npz").class_names == (
        "class 0", "class 1", "class 2", "class 3", "class 4")


def test_recent_events_keep_whole_batches_and_at_least_the_newest_bound():
    recent = RecentEvents(max_events=1_000)
    zeros = np.zeros(300, dtype=np.int64)
    batches = [make_events(np.arange(k * 300, (k + 1) * 300), zeros, zeros, zeros + 1) for k in range(10)]
    for batch in batches:
        recent.add(batch)
    kept = recent.take()
    # the fewest whole newest batches holding at least 1,000 events: the last 4 (1,200 events)
    np.testing.assert_array_equal(kept, np.concatenate(batches[-4:]))
    assert recent.take().size == 0


def test_the_meter_counts_and_measures():
    meter = PipelineMeter()
    meter.batch_in(100)
    meter.batch_in(50)
    meter.batch_dropped(50)
    meter.integrated(frames=3, events_integrated=100)
    meter.frame_dropped()
    for latency in (0.010, 0.020):
        meter.stepped(frames=1, decisions=1, published=9.5, latencies_s=[latency], step_ms=1.5, frame_ms=2.0)
    meter.stepped(frames=1, decisions=0, published=9.5, latencies_s=[], step_ms=1.0, frame_ms=1.0)  # no latency
    first = meter.snapshot(10.0, event_queue_depth=2, frame_queue_depth=1)
    meter.batch_in(200)
    stats = meter.snapshot(11.0, event_queue_depth=0, frame_queue_depth=0)
    assert (first.events_in, first.dropped_batches, first.dropped_events, first.frames, first.dropped_frames,
            first.frames_stepped, first.decisions, first.event_queue_depth) == (150, 1, 50, 3, 1, 3, 2, 2)
    assert first.latency_ms_mean == pytest.approx(15.0) and first.step_ms == 1.0
    assert first.latency_ms_p95 == pytest.approx(np.percentile([10.0, 20.0], 95))
    assert stats.events_in == 350 and stats.events_per_s == pytest.approx(200.0)


def test_latency_figure_recovers_after_a_burst_at_one_decision_a_second():
    window = LatencyWindow(window_s=10.0)
    assert window.summary_ms(0.0) == (0.0, 0.0)
    window.add(0.0, 2.0, count=100)              # a burst: 100 decisions published 2 s late
    for second in range(1, 31):                  # then one decision a second, 10 ms each
        window.add(float(second), 0.010)
    assert window.summary_ms(5.0)[0] > 1_000     # the burst is still in the last 10 s
    assert window.summary_ms(30.0) == pytest.approx((10.0, 10.0))  # the last 100 decisions would hold 70 of it
    sparse = LatencyWindow(window_s=10.0)
    sparse.add(0.0, 0.004)
    assert sparse.summary_ms(60.0) == pytest.approx((4.0, 4.0))  # the latest decision, however old


def test_the_meter_counts_frames_a_remote_engine_lost_and_latencies_of_later_answers():
    meter = PipelineMeter()
    for _ in range(5):  # five frames pushed to a remote engine, no answer yet
        meter.stepped(frames=1, decisions=0, published=0.5, latencies_s=[], step_ms=1.0, frame_ms=1.0)
    # an answer for one frame (its latency known), two more decided without a hand-over on record, 2 lost
    meter.stepped(frames=0, decisions=3, published=0.9, latencies_s=[0.040], step_ms=1.0, frame_ms=1.0, lost=2)
    stats = meter.snapshot(1.0, event_queue_depth=0, frame_queue_depth=0)
    assert (stats.frames_stepped, stats.lost_frames, stats.decisions) == (3, 2, 3)
    assert stats.latency_ms_mean == pytest.approx(40.0)
    assert stats.figures().endswith("dropped 0 frames, 0 events, lost 2 frames")
