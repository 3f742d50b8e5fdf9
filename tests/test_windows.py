"""Live-window training samples: the same frames as the live integrator, labels as the streaming score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livegesture.integrate import SlidingIntegrator, integrate_sample
from livegesture.model.config import MIN_OUTPUT_SPIKES, TrainConfig
from livegesture.model.train import correct_of, loss_of, mirror
from livegesture.model.windows import IDLE, Session, WindowRange, WindowSampler, window_label
from livegesture.sources.labels import GestureSegment, cut_segments
from livegesture.synth.generate import SynthSettings
from livegesture.synth.gestures import TimingModel
from livegesture.synth.writers import make_session

TIMING = TimingModel(gesture_seconds=(1.2, 1.5), still_seconds=(1.5, 2.5), back_to_back=0.0, idle_actions=True)


@pytest.fixture(scope="module")
def session() -> Session:
    events, segments = make_session([0, 3, 9], 4, 7, "lab", settings=SynthSettings(timing=TIMING, max_step_px=1.5))
    return Session.of(events, segments, (128, 128), 7, "s")


@pytest.fixture(scope="module")
def events(session) -> np.ndarray:
    return make_session([0, 3, 9], 4, 7, "lab", settings=SynthSettings(timing=TIMING, max_step_px=1.5))[0]


def live_frames(events: np.ndarray, events_per_frame: int, frames: int, seed: int) -> np.ndarray:
    """The first ``frames`` frames the live integrator emits on ``events``, fed in random batches."""
    integrator = SlidingIntegrator((128, 128), events_per_frame)
    rng = np.random.default_rng(seed)
    out, start = [], 0
    while len(out) < frames:
        stop = start + int(rng.integers(1, 3 * events_per_frame))
        out.extend(f.data for f in integrator.push(events[start:stop]))
        start = stop
    return np.stack(out[:frames])


def test_a_drawn_window_is_what_the_live_integrator_makes_of_the_same_events(session, events):
    window = WindowRange(events_per_frame=(300, 900), keep=(1.0, 1.0), whole_share=0.0, idle_share=0.5)
    drawn = WindowSampler([session], window).draw(12, seed=1)
    assert set(drawn.labels.tolist()) & {IDLE} and set(drawn.labels.tolist()) - {IDLE}
    for frames, events_per_frame, first in zip(drawn.frames, drawn.events_per_frame, drawn.first_event):
        assert np.array_equal(frames, live_frames(events[first:], int(events_per_frame), 10, seed=int(first)))
    # a window starting on a frame boundary of the whole stream is that stream's frames k..k+10
    k, n = 7, 500
    whole_stream = live_frames(events, n, k + 10, seed=0)
    assert np.array_equal(live_frames(events[k * n:], n, 10, seed=3), whole_stream[k:])


def test_whole_gesture_samples_are_the_reference_transform(session, events):
    window = WindowRange(whole_share=1.0)
    drawn = WindowSampler([session], window).draw(6, seed=3)
    cuts = {s.label: cut for s, cut in zip(session.segments, cut_segments(events, list(session.segments)))}
    for frames, label in zip(drawn.frames, drawn.labels):
        assert np.array_equal(frames, integrate_sample(cuts[int(label)], 10, (128, 128)))


def test_labels_follow_the_streaming_score():
    gesture = [GestureSegment(4, 1_000, 2_000)]
    assert window_label(1_200, 1_900, gesture) == 4  # inside
    assert window_label(600, 1_500, gesture) == 4  # 5/9 inside, ends inside
    assert window_label(200, 1_100, gesture) is None  # just begun: ambiguous, not drawn
    assert window_label(2_100, 3_000, gesture) == IDLE  # after it
    assert window_label(1_800, 2_600, gesture) == IDLE  # 2/8 of it, ended: must fall silent
    assert window_label(1_100, 2_200, gesture) is None  # mostly the gesture, just ended
    assert window_label(0, 900, gesture) == IDLE
    # a narrower ambiguous band (the model's WindowRange): the same windows decided otherwise
    assert window_label(600, 1_500, gesture, min_inside=0.6) is None  # 5/9 inside is not enough now
    assert window_label(200, 1_100, gesture, min_inside=0.1) == 4  # 1/9 inside is
    assert window_label(1_100, 2_200, gesture, max_idle_overlap=0.9) == IDLE  # 9/11 of it, ended: silence
    assert window_label(1_800, 2_600, gesture, max_idle_overlap=0.2) is None  # 2/8 of it is too much now


def test_the_sampler_labels_windows_with_its_ranges_band(session):
    def overlaps(drawn, ranged):
        """Per drawn window: its label under ``ranged``'s band, and the largest share of it in a gesture."""
        out = []
        for first, events_per_frame in zip(drawn.first_event, drawn.events_per_frame):
            t_first, t_last = int(session.t[first]), int(session.t[first + 10 * int(events_per_frame) - 1])
            share = max(max(min(t_last, s.end_us) - max(t_first, s.start_us), 0) for s in session.segments)
            out.append((window_label(t_first, t_last, session.segments, ranged.min_inside, ranged.max_idle_overlap),
                        share / (t_last - t_first)))
        return out

    wide = WindowRange(idle_share=1.0, whole_share=0.0, keep=(1.0, 1.0), max_idle_overlap=0.9)
    drawn = WindowSampler([session], wide).draw(60, seed=5)
    found = overlaps(drawn, wide)
    assert np.all(drawn.labels == IDLE) and all(label == IDLE for label, _ in found)
    assert max(share for _, share in found) > 0.4  # windows the default band leaves out are drawn as idle
    narrow = WindowRange(idle_share=0.0, whole_share=0.0, keep=(1.0, 1.0), min_inside=0.9)
    drawn = WindowSampler([session], narrow).draw(30, seed=6)
    assert [label for label, _ in overlaps(drawn, narrow)] == drawn.labels.tolist()
    with pytest.raises(ValueError, match="min_inside"):
        WindowRange(min_inside=0.0)
    with pytest.raises(ValueError, match="max_idle_overlap"):
        WindowRange(max_idle_overlap=1.0)


def test_idle_windows_are_drawn_from_between_gestures(session):
    drawn = WindowSampler([session], WindowRange(idle_share=1.0, whole_share=0.0)).draw(20, seed=4)
    assert np.all(drawn.labels == IDLE)
    for first, events_per_frame in zip(drawn.first_event, drawn.events_per_frame):
        t_first = session.t[first]
        label = window_label(int(t_first), int(session.t[min(first + 10 * events_per_frame, len(session) - 1)]),
                             session.segments)
        assert label in (IDLE, None)  # thinning stretches the span a little; never inside a gesture


def test_the_idle_target_is_silence():
    config = TrainConfig()
    labels = torch.tensor([IDLE, 2])
    silent = torch.zeros(2, 11)
    silent[1, 2] = 8
    assert float(loss_of(silent, labels, config)) > 0
    target = silent.clone()
    target[1, 2] = 10 + 6 - 4  # a spike at every step CRI counts (10 frames + 6 drain, 4 layers deep)
    assert float(loss_of(target, labels, config)) == pytest.approx(0.0)
    noisy = target.clone()
    noisy[0, 5] = 3.0
    assert float(loss_of(noisy, labels, config)) > 0  # an idle window that spikes is penalised
    assert correct_of(noisy, labels) == 2  # 3 spikes < MIN_OUTPUT_SPIKES still says "no gesture"
    noisy[0, 5] = MIN_OUTPUT_SPIKES
    assert correct_of(noisy, labels) == 1
    flipped, flipped_labels = mirror(torch.zeros(2, 10, 2, 5, 5), torch.tensor([IDLE, IDLE]),
                                     torch.Generator().manual_seed(0))
    assert flipped_labels.tolist() == [IDLE, IDLE]


def test_class_weights_weigh_each_samples_loss():
    """Weighted by hand: each sample's mean squared error of its rates, times its class's weight
    (an idle window's: 1), over the sum of the weights."""
    steps = 10 + 6 - 4
    counts = torch.tensor([[6.0, 0, 0], [0, 3.0, 9.0], [2.0, 0, 0]])
    labels = torch.tensor([0, 2, IDLE])
    errors = [((6 / steps - 1) ** 2) / 3, ((3 / steps) ** 2 + (9 / steps - 1) ** 2) / 3, ((2 / steps) ** 2) / 3]
    net = TrainConfig().net.__class__(num_classes=3)
    plain = TrainConfig(mirror=False, net=net)
    weighted = TrainConfig(mirror=False, net=net, class_weights=(1.0, 1.0, 4.0))
    assert float(loss_of(counts, labels, plain)) == pytest.approx(sum(errors) / 3)
    assert float(loss_of(counts, labels, weighted)) == pytest.approx((errors[0] + 4 * errors[1] + errors[2]) / 6)
    ce = TrainConfig(mirror=False, net=net, loss="ce", class_weights=(1.0, 1.0, 4.0))
    known = labels[:2]
    expected = torch.nn.functional.cross_entropy(counts[:2], known, weight=torch.tensor([1.0, 1.0, 4.0]))
    assert float(loss_of(counts[:2], known, ce)) == pytest.approx(float(expected))
    with pytest.raises(ValueError, match="3 positive numbers"):
        TrainConfig(mirror=False, net=net, class_weights=(1.0, 2.0))


def test_sampler_refuses_sessions_without_room():
    empty = Session.of(np.zeros(0, dtype=[("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")]), [], (128, 128),
                       1, "empty")
    with pytest.raises(ValueError, match="no labelled gestures"):
        WindowSampler([empty], WindowRange())
    with pytest.raises(ValueError, match="no sessions"):
        WindowSampler([], WindowRange())


def test_live_training_records_its_window_and_can_restart_from_a_model_file(tmp_path):
    from livegesture.model.config import NetConfig
    from livegesture.model.files import load_model
    from livegesture.model.net import SpikingNet
    from livegesture.model.quantize import export
    from livegesture.model.train import _initial_weights, train_live
    from livegesture.synth.writers import write_dataset

    write_dataset(tmp_path / "data", 2, ["lab"], 1, seed=5, settings=SynthSettings(timing=TIMING, max_step_px=2.0))
    config = TrainConfig(epochs=1, qat_epochs=1, batch_size=8, net=NetConfig(channels=4, conv_layers=2))
    window = WindowRange(events_per_frame=(300, 1200))
    result = train_live(tmp_path / "data", tmp_path / "run", config, window, windows_per_epoch=16,
                        validation_windows=8, progress=False, echo=lambda _: None)
    model = load_model(result.model_path)
    assert model.info.live_window.events_per_frame_range == (300, 1200)
    assert model.info.live_window.events_per_frame == 600  # the geometric middle of the range
    assert (model.info.live_window.clear_every, model.info.live_window.drain_steps) == (10, 6)
    assert model.info.training["train_users"] == [1] and model.info.training["test_users"] == [2]
    net = SpikingNet(config.net)
    net.load_state_dict(_initial_weights(result.model_path, config))
    again = export(net, model.network.threshold)
    for ours, theirs in zip(again.layers, model.network.layers):
        assert np.array_equal(ours.weight, theirs.weight)  # w / threshold * threshold rounds back


def test_an_unreadable_label_file_leaves_out_its_recording_only(tmp_path):
    from livegesture.sources.dataset import DvsGestureFolder
    from livegesture.model.windows import load_sessions
    from livegesture.synth.writers import write_dataset

    write_dataset(tmp_path / "data", 2, ["lab", "natural"], 1, seed=5,
                  settings=SynthSettings(timing=TimingModel(gesture_seconds=(0.5, 0.5)), max_step_px=2.0))
    (tmp_path / "data" / "user01_lab_labels.csv").write_bytes(b"class,startTime_usec\xff\n")
    folder = DvsGestureFolder(tmp_path / "data")
    sessions = load_sessions(folder, "train")
    assert [s.name for s in sessions] == ["user01_natural.aedat"]
    assert len(folder.skipped) == 1 and "user01_lab_labels.csv" in str(folder.skipped[0])


def test_a_time_stretched_recording_gives_the_same_windows(session):
    """Equal-count windows are blind to the clock's speed: time-stretch augmentation is implicit."""
    stretched = Session(session.pixels, session.t.astype(np.int64) * 3,
                        tuple(GestureSegment(s.label, 3 * s.start_us, 3 * s.end_us) for s in session.segments),
                        session.sensor_size, session.group, session.name)
    window = WindowRange(events_per_frame=(300, 900), whole_share=0.2, idle_share=0.4)
    plain, slow = (WindowSampler([s], window).draw(16, seed=5) for s in (session, stretched))
    assert np.array_equal(plain.labels, slow.labels) and np.array_equal(plain.first_event, slow.first_event)
    assert np.array_equal(plain.frames, slow.frames)
