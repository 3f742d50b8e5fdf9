"""``livegesture serve`` and the remote engine over loopback: parity with the local pipeline,
bad clients, a server restart, the settings field and Ctrl-C. Every server here stops itself."""

from __future__ import annotations

import json
import math
import re
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from livegesture.backends.testing import random_network
from livegesture.events import make_events
from livegesture.pipeline.engine import decide_stream, make_engine
from livegesture.pipeline.frames import FrameBuilder
from livegesture.pipeline.runner import Pipeline
from livegesture.pipeline.remote.client import RemoteEngine
from livegesture.pipeline.remote.protocol import (
    MAX_FRAMES_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    TOKEN_USER,
    ProtocolError,
    RemoteError,
    encode,
    pack_frame,
    unpack_frames,
)
from livegesture.pipeline.remote.server import Server
from livegesture.pipeline.settings import PipelineSettings, SettingsError
from test_pipeline_runner import MemorySource, finished, run_until  # the runner tests' helpers
from test_pipeline_runner import settings as runner_settings

ROOT = Path(__file__).resolve().parents[1]
SIZE = (128, 128)
TOKEN = "test-token"
REPLY_S = 5.0


@pytest.fixture(scope="module")
def network():
    return random_network(np.random.default_rng(5), channels=4, input_shape=(2, 63, 63), num_classes=5)


def settings(**changes) -> PipelineSettings:
    """The runner tests' settings with a prediction that smooths and holds, so that the
    server's running prediction is exercised too."""
    held = dict(smoothing=2, min_confidence=0.2, min_output_spikes=1, switch_margin=0.05)
    return runner_settings(**{**held, **changes})


def event_batches(n: int = 30_000, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 1_000_000, n))
    events = make_events(t, rng.integers(0, SIZE[0], n), rng.integers(0, SIZE[1], n), rng.integers(0, 2, n))
    return np.array_split(events, 300)


def same_decisions(a: list, b: list) -> bool:
    key = lambda d: (d.label, round(d.confidence, 12), d.counts.tolist(), d.t_us, d.frame_index,  # noqa: E731
                     d.quiet, d.window)
    return [key(d) for d in a] == [key(d) for d in b]


@pytest.fixture(autouse=True)
def prompt_thread_switches():
    """Server, desk (and delay link) share one interpreter here: with the default 5 ms switch
    interval a thread woken by its socket waits that long for the lock, which would swamp the
    timings (in use, server and desk are separate processes)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    yield
    sys.setswitchinterval(previous)


@pytest.fixture
def token_file(tmp_path, monkeypatch):
    path = tmp_path / "remote.token"
    path.write_text(TOKEN + "\n")
    monkeypatch.setenv("LIVEGESTURE_TOKEN_FILE", str(path))
    return path


class Running:
    """A server on a thread; ``stop`` ends it (and a test's end does, whatever happens)."""

    def __init__(self, network, port: int = 0, **options) -> None:
        self.lines: list[str] = []
        self.server = Server(network, settings(), TOKEN, port=port, log=self.lines.append, **options)
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()
        self.address = f"127.0.0.1:{self.server.port}"

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(REPLY_S)
        assert not self.thread.is_alive()


@pytest.fixture
def serving(network, token_file):
    running = []

    def start(**options) -> Running:
        running.append(Running(network, **options))
        return running[-1]

    yield start
    for server in running:
        server.stop()


def test_packed_frames_round_trip_in_order_and_size():
    data = (np.random.default_rng(0).random((3, 2, 63, 63)) < 0.3).astype(np.uint8)
    bits = [pack_frame(d) for d in data]
    assert [len(b) for b in bits] == [993] * 3  # 7,938 pixels, 8 to a byte
    header = {"type": "frames", "frames": [[7, 100, 110], [8, 110, 120], [9, 120, 130]]}
    frames = unpack_frames(header, b"".join(bits), (2, 63, 63))
    assert [(f.index, f.t_first_us, f.t_last_us) for f in frames] == [(7, 100, 110), (8, 110, 120), (9, 120, 130)]
    assert all(np.array_equal(f.data, d) for f, d in zip(frames, data))


@pytest.mark.parametrize(("fields", "size", "problem"), [
    ([[0, 0, 0]] * (MAX_FRAMES_PER_MESSAGE + 1), 993 * (MAX_FRAMES_PER_MESSAGE + 1),
     f"1 to {MAX_FRAMES_PER_MESSAGE} frames in a message, got {MAX_FRAMES_PER_MESSAGE + 1}"),
    ([], 0, "got 0"),
    ([[0, 0]], 993, "each frame must be [index, t_first_us, t_us]"),
    ([[0, 0, True]], 993, "each frame must be [index, t_first_us, t_us]"),
    ([[0, 0, 0], [1, 0, 0]], 993, "1986 bytes of packed bits expected for 2 frame(s)"),
])
def test_a_frames_message_with_too_many_frames_or_the_wrong_size_is_refused(fields, size, problem):
    with pytest.raises(ProtocolError, match=re.escape(problem)):
        unpack_frames({"type": "frames", "frames": fields}, b"\0" * size, (2, 63, 63))


@pytest.mark.parametrize("mode", ["periodic", "staggered"])
def test_lossless_decisions_through_the_server_equal_the_local_pipelines(network, serving, mode):
    server = serving()
    batches = event_batches()
    chosen = settings(mode=mode)
    local = list(decide_stream(batches, SIZE, network, chosen))
    remote = list(decide_stream(batches, SIZE, network, chosen.replace(remote=server.address)))
    assert len(local) >= 10 and same_decisions(remote, local)


def frames_and_messages(server: Running) -> tuple[int, int]:
    """The frames and messages of the session the (only) desk ended by saying bye, from the server's log."""
    deadline = time.monotonic() + REPLY_S
    while not any("said bye" in line for line in server.lines):
        assert time.monotonic() < deadline, server.lines
        time.sleep(0.01)
    line = next(line for line in server.lines if "said bye" in line)
    found = re.search(r"after ([\d,]+) frames in ([\d,]+) messages", line)
    return int(found[1].replace(",", "")), int(found[2].replace(",", ""))


def test_frames_held_back_go_in_batches_in_order_and_decide_as_the_local_pipeline(network, serving, monkeypatch):
    """A window of 2 frames in flight makes the desk hold frames back and send them several to a
    message; the lossless decisions still equal the local ones, window for window."""
    monkeypatch.setattr("livegesture.pipeline.remote.server.WINDOW_FRAMES", 2)
    server = serving()
    batches = event_batches()
    chosen = settings(mode="staggered")
    local = list(decide_stream(batches, SIZE, network, chosen))
    remote = list(decide_stream(batches, SIZE, network, chosen.replace(remote=server.address)))
    assert len(local) >= 10 and same_decisions(remote, local)
    frames, messages = frames_and_messages(server)
    builder = FrameBuilder(SIZE, chosen)
    assert frames == sum(len(builder.push(batch)) for batch in batches)  # every frame stepped once
    assert messages <= frames / 2, f"{frames} frames in {messages} messages: not batched"

@pytest.mark.parametrize("rate", [0.0, 6_000.0])  # off, and the server's own default: the desk's value counts
def test_the_server_applies_the_quiet_scene_gate_as_the_local_engine(network, serving, rate):
    server = serving()
    rng = np.random.default_rng(4)
    parts = [(0, 500_000, 20_000), (500_000, 2_500_000, 2_000), (2_500_000, 3_000_000, 20_000)]  # busy, quiet, busy
    t = np.concatenate([np.sort(rng.integers(start, end, n)) for start, end, n in parts])
    events = make_events(t, rng.integers(0, SIZE[0], t.size), rng.integers(0, SIZE[1], t.size),
                         rng.integers(0, 2, t.size))
    batches = np.array_split(events, 100)
    chosen = settings(min_event_rate=rate)  # the quiet part's 500-event frames take 0.5 s: 1,000 events/s
    local = list(decide_stream(batches, SIZE, network, chosen))
    remote = list(decide_stream(batches, SIZE, network, chosen.replace(remote=server.address)))
    gated = any(d.quiet and d.window for d in local) and any(not d.window for d in local)
    assert gated == (rate > 0)
    assert same_decisions(remote, local)


def test_the_threaded_pipeline_through_the_server_decides_as_decide_stream(network, serving):
    server = serving()
    batches = event_batches(12_000)
    chosen = settings(lossless=True, remote=server.address)
    decisions: list = []
    with Pipeline(MemorySource(batches), network, chosen) as pipeline:
        stats = run_until(pipeline, finished, decisions).stats
    assert same_decisions(decisions, list(decide_stream(batches, SIZE, network, chosen.replace(remote=""))))
    assert stats.lost_frames == 0 and stats.latency_ms_mean > 0


def test_answers_carry_output_counts_and_backend_counters(network, serving):
    server = serving()
    with make_engine(network, settings(remote=server.address)) as engine:
        assert isinstance(engine, RemoteEngine) and engine.server_backend == "fast"
        from livegesture.integrate import Frame

        frames = [Frame(k, np.ones((2, 63, 63), np.uint8), k, k) for k in range(8)]
        decisions = [d for f in frames for d in engine.push(f)] + engine.flush()
        counters = engine.backend_counters
    assert [d.frame_index for d in decisions] == [3, 7]
    assert counters["steps"] == 8 + 2 * 2 and counters["output_spikes"] == sum(int(d.counts.sum()) for d in decisions)


def raw_client(address: str, token: str = TOKEN) -> zmq.Socket:
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.plain_username, socket.plain_password = TOKEN_USER, token.encode()
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(f"tcp://{address}")
    return socket


def answer(socket: zmq.Socket) -> dict:
    assert socket.poll(int(REPLY_S * 1000)), "no answer"
    return json.loads(socket.recv_multipart()[0])


def frame_header(session: str, count: int = 1) -> dict:
    return {"type": "frames", "session": session, "seq": 0, "frames": [[k, 0, 0] for k in range(count)]}


def hello(network) -> dict:
    return {"type": "hello", "settings": {"clear_every": 4}, "input_shape": [2, 63, 63],
            "num_outputs": network.num_outputs}


@pytest.mark.parametrize(("message", "problem"), [
    ([b"not json"], "header is not JSON"),
    ([json.dumps({"v": PROTOCOL_VERSION + 1, "type": "hello"}).encode()], "protocol version"),
    ([b"{}", b"x", b"y"], "1 or 2 parts"),
    ([b"x" * (MAX_MESSAGE_BYTES + 1)], "exceeds the limit"),
])
def test_a_bad_message_gets_an_error_and_ends_only_that_session(network, serving, message, problem):
    server = serving()
    with make_engine(network, settings(remote=server.address)) as good:
        bad = raw_client(server.address)
        bad.send_multipart(encode(hello(network)))
        session = answer(bad)["session"]
        bad.send_multipart(message)
        reply = answer(bad)
        assert reply["type"] == "error" and reply["fatal"] and problem in reply["message"]
        frame = pack_frame(np.ones((2, 63, 63)))
        bad.send_multipart(encode(frame_header(session), frame))
        assert answer(bad)["code"] == "no-session"  # its session is gone
        bad.close()
        from livegesture.integrate import Frame

        decisions = [d for k in range(8) for d in good.push(Frame(k, np.ones((2, 63, 63), np.uint8), k, k))]
        assert len(decisions + good.flush()) == 2  # the other desk is served all along
    assert any(problem in line for line in server.lines)


def test_a_frame_of_the_wrong_size_too_many_frames_and_a_foreign_model_are_refused(network, serving):
    server = serving()
    socket = raw_client(server.address)
    socket.send_multipart(encode({**hello(network), "num_outputs": 3}))
    assert "has 3 outputs" in answer(socket)["message"]
    socket.send_multipart(encode(hello(network)))
    session = answer(socket)["session"]
    socket.send_multipart(encode(frame_header(session), b"\0" * 5))
    assert "993 bytes of packed bits expected" in answer(socket)["message"]
    socket.send_multipart(encode(hello(network)))
    session = answer(socket)["session"]
    count = MAX_FRAMES_PER_MESSAGE + 1  # within the size limit, beyond the frames limit
    socket.send_multipart(encode(frame_header(session, count), pack_frame(np.ones((2, 63, 63))) * count))
    assert f"1 to {MAX_FRAMES_PER_MESSAGE} frames in a message" in answer(socket)["message"]
    socket.close()


def test_an_unauthenticated_desk_is_refused_with_a_clear_error(network, serving, token_file, tmp_path):
    server = serving()
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not the token\n")
    with pytest.raises(RemoteError, match=f"refused the token in {wrong}"):
        RemoteEngine(network, settings(remote=server.address), token_file=wrong)
    socket = raw_client(server.address, "not the token")
    try:  # without blocking: once the handshake has failed, a DEALER has no peer to queue for and waits forever
        socket.send_multipart(encode(hello(network)), zmq.NOBLOCK)
    except zmq.Again:
        pass
    assert not socket.poll(500)  # ZeroMQ's handshake never let the message through
    socket.close()


def test_a_desk_meeting_a_server_of_another_protocol_version_is_told_so_in_one_line(network, token_file):
    """A server of protocol version 1 refuses the desk's hello in its own version: the desk says which."""
    from zmq.auth.thread import ThreadAuthenticator

    context = zmq.Context()
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    authenticator.configure_plain(domain="*", passwords={TOKEN_USER.decode(): TOKEN})
    old = context.socket(zmq.ROUTER)
    old.plain_server = True
    old.setsockopt(zmq.LINGER, 0)
    port = old.bind_to_random_port("tcp://127.0.0.1")

    def refuse() -> None:
        if old.poll(int(REPLY_S * 1000)):
            identity, *_ = old.recv_multipart()
            error = {"v": 1, "type": "error", "fatal": True, "message": "protocol version 2, this side speaks 1"}
            old.send_multipart([identity, json.dumps(error).encode()])

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    try:
        with pytest.raises(ProtocolError, match=f"protocol version 1, this side speaks {PROTOCOL_VERSION}: install "
                                                "the same livegesture version"):
            RemoteEngine(network, settings(remote=f"127.0.0.1:{port}"))
    finally:
        thread.join(REPLY_S)
        old.close()
        authenticator.stop()
        context.term()


def test_no_server_is_a_one_line_error(network, token_file, monkeypatch):
    monkeypatch.setattr("livegesture.pipeline.remote.client.CONNECT_TIMEOUT_S", 0.5)
    with pytest.raises(RemoteError, match=r"no answer from 127.0.0.1:1 within 0.5 s: is `livegesture serve` running"):
        RemoteEngine(network, settings(remote="127.0.0.1:1"))


def test_the_cri_backend_serves_one_desk_at_a_time(network, serving, monkeypatch):
    server = serving()
    server.server.max_sessions = 1  # as with the cri backend
    with make_engine(network, settings(remote=server.address)):
        with pytest.raises(RemoteError, match="busy"):
            make_engine(network, settings(remote=server.address))


def test_a_server_restart_is_told_counted_and_followed_by_a_fresh_window(network, serving):
    from livegesture.integrate import Frame

    first = serving()
    port = first.server.port
    frame = lambda k: Frame(k, np.ones((2, 63, 63), np.uint8), k, k)  # noqa: E731
    with make_engine(network, settings(remote=first.address)) as engine:
        decided = [d for k in range(6) for d in engine.push(frame(k))] + engine.flush()
        assert [d.frame_index for d in decided] == [3]
        first.stop()
        second = serving(port=port)
        decided, k = [], 6
        deadline = time.monotonic() + 10
        while not decided:  # frames go on; some are lost until the new server answers
            assert time.monotonic() < deadline
            decided += engine.push(frame(k)) + engine.flush()
            k += 1
            time.sleep(0.01)
        notices = " ".join(engine.take_notices())
        lost = engine.step_stats.frames_lost
    assert f"lost the connection to {first.address}" in notices or "does not know this desk" in notices
    assert "reconnected" in notices and "fresh window" in notices and lost >= 1
    # a fresh window: the new session's first decision covers the 4 frames after it started
    assert decided[0].frame_index == k - 1 and k - 6 - lost == 4
    assert any("a desk connected" in line for line in second.lines)


def test_a_headless_run_prints_what_the_link_tells_and_goes_on(network, serving, tmp_path, monkeypatch, capsys):
    from livegesture.cli import main
    from livegesture.model.files import ModelInfo, save_model

    monkeypatch.setenv("LIVEGESTURE_CONFIG", str(tmp_path / "config.toml"))
    model = save_model(tmp_path / "net.npz", network,
                       ModelInfo(class_names=tuple(f"class {k}" for k in range(network.num_outputs))))
    first = serving()

    def restart() -> None:  # once the desk is served, the server restarts on its port
        deadline = time.monotonic() + REPLY_S
        while not first.server.sessions and time.monotonic() < deadline:
            time.sleep(0.01)
        first.stop()
        serving(port=first.server.port)

    restarter = threading.Thread(target=restart)
    restarter.start()
    try:
        rc = main(["run", str(ROOT / "recordings" / "demo_session.aedat4"), "--headless", "--model", str(model),
                   "--remote", first.address, "--speed", "1", "--duration", "3"])
    finally:
        restarter.join()
    captured = capsys.readouterr()
    out = captured.out
    assert rc == 0, captured.err
    assert f"backend remote {first.address}" in out
    assert "warning: remote: " in out and "reconnected" in out and "fresh window" in out


def test_remote_setting_is_validated():
    assert settings(remote="cri-host:5605").remote == "cri-host:5605"
    assert settings(remote="[::1]:5605").remote == "[::1]:5605"
    for bad in ("cri-host", "cri-host:0", ":5605", "host:port"):
        with pytest.raises(SettingsError, match="setting remote must be HOST:PORT"):
            settings(remote=bad)


def test_serve_runs_and_stops_cleanly_on_ctrl_c(tmp_path):
    token = tmp_path / "serve.token"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIVEGESTURE_TOKEN_FILE": str(token)}
    process = subprocess.Popen([sys.executable, "-m", "livegesture", "serve", "--backend", "fast", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    try:
        line = process.stdout.readline()
        assert "listening on 127.0.0.1:" in line and str(token) in line, line
        assert token.stat().st_mode & 0o777 == 0o600 and len(token.read_text().strip()) >= 32
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)  # a hang, not a slow machine, fails it
    finally:
        process.kill()
    assert process.returncode == 0 and "serve: stopped" in out and "Traceback" not in out


def test_per_sample_evaluation_through_the_server_equals_the_local_one(network, serving, tmp_path):
    from test_eval import random_gestures

    from livegesture.evaluate.per_sample import EvaluatorSpec, evaluate_samples
    from livegesture.evaluate.recordings import find_recordings
    from livegesture.model.files import ModelInfo, save_model
    from livegesture.sources.labels import CLASS_NAMES

    server = serving()
    model = save_model(tmp_path / "small.npz", network, ModelInfo(5, 3, class_names=CLASS_NAMES[:5]))
    random_gestures(tmp_path / "random.aedat", [0, 1, 2, 3, 4, 0], seed=4)
    inventory = find_recordings(tmp_path / "random.aedat")
    local = evaluate_samples(inventory, EvaluatorSpec(model, "fast"))
    remote = evaluate_samples(inventory, EvaluatorSpec(model, remote=server.address), workers=2)
    assert [r.counts for r in remote.results] == [r.counts for r in local.results]
    assert len(local.results) == 6 and sum(map(sum, (r.counts for r in local.results))) > 0


def test_streaming_evaluation_over_several_policies_through_the_server_scores_as_the_local_one(token_file, tmp_path):
    from livegesture.evaluate.recordings import find_recordings
    from livegesture.evaluate.streaming import run_streams
    from livegesture.evaluate.testing import forced_network, write_hand_stream

    recording, chosen = write_hand_stream(tmp_path)
    points = [chosen.replace(smoothing=smoothing, min_confidence=confidence)  # one run, its counts replayed 4 times
              for smoothing in (1, 2) for confidence in (0.0, 0.6)]
    inventory = find_recordings(recording)
    server = Running(forced_network())
    try:
        remote, not_run = run_streams(inventory, Path(chosen.model), [p.replace(remote=server.address) for p in points])
    finally:
        server.stop()
    local, _ = run_streams(inventory, Path(chosen.model), points)
    assert not_run == 0 and len(remote) == len(local) == 4
    scored = lambda r: (r.score.gestures, r.score.decisions.confusion.tolist(), r.score.frame_accuracy,  # noqa: E731
                        r.score.idle_rejection)
    assert [scored(r) for r in remote] == [scored(r) for r in local]
    assert len({repr(scored(r)) for r in local}) > 1  # the policies differ


def push_frames(engine, count: int, start: int = 0) -> tuple[list, float, int]:
    """Push ``count`` all-on frames and wait for every answer: (decisions, seconds, most frames in flight)."""
    began, most, decisions = time.perf_counter(), 0, []
    for k in range(start, start + count):
        decisions += engine.push(push_frame(k))
        most = max(most, engine.in_flight)
    return decisions + engine.flush(), time.perf_counter() - began, most


def test_the_frames_in_flight_fill_the_round_trip_and_the_queue_budget_not_the_whole_window(network, serving,
                                                                                           monkeypatch):
    """A server taking 5 ms a frame: the desk keeps about (round trip + 50 ms) / 5 ms frames in
    flight (plus a batch it held back), not the server's window of 128 (the frames at once), and
    sends what it holds back a batch at a time (25 ms of the server's work), not a frame whenever
    an answer makes room."""
    from livegesture.pipeline.engine import PredictionEngine
    from livegesture.pipeline.remote.client import QUEUE_BUDGET_S

    step = PredictionEngine._step

    def slow_step(self, backend, inputs):
        time.sleep(0.005)
        return step(self, backend, inputs)

    monkeypatch.setattr(PredictionEngine, "_step", slow_step)  # the server's engine: the desk's is remote
    server = serving()
    with make_engine(network, settings(remote=server.address)) as engine:
        push_frames(engine, 8)  # the round trip and the server's time per frame known
        decisions, _, most = push_frames(engine, 200, start=8)
        quickest, batch = engine.quickest_round_trip_s, engine.batch_frames
    assert len(decisions) == 50 and quickest >= 0.005  # a round trip holds at least one step
    assert 2 <= batch <= 5  # 25 ms of a server's work at 5 ms a step and more (its thread shares the GIL)
    at_most = math.ceil((quickest + QUEUE_BUDGET_S) / 0.005) + batch
    assert 8 <= most <= at_most < 128, f"{most} frames in flight (expected 8 to {at_most}, round trip {quickest} s)"
    frames, messages = frames_and_messages(server)
    assert frames == 208 and frames / messages >= batch / 2, f"{frames} frames in {messages} messages"


@pytest.mark.parametrize(("frame_ms", "batch"), [(1.9, 13), (5.0, 5), (5.1, 4), (0.5, 32), (0.1, 32), (40.0, 1),
                                                  (0.0, 8)])
def test_a_batch_holds_25_ms_of_the_server_s_work_at_most_and_8_frames_before_it_says_its_speed(frame_ms, batch):
    from livegesture.pipeline.remote.client import batch_frames

    assert batch_frames(frame_ms / 1e3) == batch


def test_the_delay_link_delivers_in_order_never_early_and_closes_both_ways():
    import socket

    from livegesture.pipeline.remote.testing import DelayLink

    listener = socket.create_server(("127.0.0.1", 0))

    def echo() -> None:
        peer, _ = listener.accept()
        while data := peer.recv(65536):
            peer.sendall(data)
        peer.close()

    threading.Thread(target=echo, daemon=True).start()
    link = DelayLink(listener.getsockname()[1], one_way_s=0.020)
    try:
        desk = socket.create_connection(("127.0.0.1", link.port))
        round_trips, received = [], b""
        for k in range(10):
            message = bytes([k]) * 1000
            began = time.monotonic()
            desk.sendall(message)
            while len(received) < 1000 * (k + 1):
                received += desk.recv(65536)
            round_trips.append(time.monotonic() - began)
        assert received == b"".join(bytes([k]) * 1000 for k in range(10))
        assert min(round_trips) >= 0.040  # each direction held 20 ms, never less
        assert sorted(round_trips)[5] < 0.045, round_trips  # and not much more (asyncio's: 1.5-2 ms)
        desk.shutdown(socket.SHUT_WR)  # the desk's end reaches the server, whose end comes back
        desk.settimeout(5)
        assert desk.recv(65536) == b""
    finally:
        link.close()
        listener.close()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_a_relay_process_asked_for_real_time_scheduling_says_what_it_got_relays_and_stops(stop):
    """``python -m livegesture.pipeline.remote.testing PORT MS --realtime`` (the benchmark's relays):
    on the real-time scheduler where allowed, saying so (or why not), relaying all the same, and
    ending cleanly on Ctrl-C or SIGTERM."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    relay = subprocess.Popen([sys.executable, "-m", "livegesture.pipeline.remote.testing",
                              str(listener.getsockname()[1]), "5", "--realtime"], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        port, scheduling = relay.stdout.readline().removeprefix("listening on ").strip().split("; ", 1)
        if scheduling == "real-time priority":
            assert os.sched_getscheduler(relay.pid) == os.SCHED_FIFO
        else:
            assert scheduling.startswith("ordinary scheduling (no real-time priority: ")
        desk = socket.create_connection(("127.0.0.1", int(port)))
        peer, _ = listener.accept()
        desk.sendall(b"frames")
        peer.settimeout(5)
        assert peer.recv(64) == b"frames"
        desk.close()
        peer.close()
    finally:
        relay.send_signal(stop)
        try:
            assert relay.wait(10) == 0
        finally:
            relay.kill()
            listener.close()


def test_frames_are_pipelined_over_a_40_ms_round_trip(network, serving):
    """Over 40 ms of round trip the desk keeps sending while answers are on their way (many
    frames in flight), and 200 frames take about as long as over none; one after the other they
    would take 8 s more. Timed against each other in one run: the machine's load varies."""
    from livegesture.pipeline.remote.testing import DelayLink

    server = serving()
    seconds, most = {}, {}
    for one_way_s in (0.0, 0.020):
        link = DelayLink(server.server.port, one_way_s)
        try:
            with make_engine(network, settings(remote=f"127.0.0.1:{link.port}")) as engine:
                push_frames(engine, 4)  # the link is up and warm
                decisions, seconds[one_way_s], most[one_way_s] = push_frames(engine, 200, start=4)
        finally:
            link.close()
        assert len(decisions) == 50
    assert most[0.020] >= 16, f"at most {most[0.020]} frames in flight: not pipelined"
    added = seconds[0.020] - seconds[0.0]
    assert added < 4.0, f"40 ms of round trip added {added:.2f} s to 200 frames (one by one: 8 s)"


def test_a_network_loss_is_told_counted_and_followed_by_a_fresh_window(network, serving, monkeypatch):
    from livegesture.pipeline.remote.testing import DelayLink

    server = serving()
    link = DelayLink(server.server.port)
    try:
        with make_engine(network, settings(remote=f"127.0.0.1:{link.port}")) as engine:
            decisions, _, _ = push_frames(engine, 6)
            assert [d.frame_index for d in decisions] == [3]
            link.cut()
            lost_before = engine.step_stats.frames_lost
            decisions, k = [], 6
            deadline = time.monotonic() + 10
            while "lost" not in " ".join(engine._notices):  # frames go on while the link is down
                assert time.monotonic() < deadline
                decisions += engine.push(push_frame(k))
                k += 1
                time.sleep(0.01)
            link.restore()
            while not decisions:
                assert time.monotonic() < deadline
                decisions += engine.push(push_frame(k)) + engine.flush()
                k += 1
                time.sleep(0.01)
            notices = " ".join(engine.take_notices())
            lost = engine.step_stats.frames_lost - lost_before
    finally:
        link.close()
    assert f"lost the connection to 127.0.0.1:{link.port}" in notices and "reconnected" in notices
    assert lost >= 1 and decisions[0].frame_index == k - 1 and k - 6 - lost == 4  # a fresh 4-frame window


def push_frame(k: int):
    from livegesture.integrate import Frame

    return Frame(k, np.ones((2, 63, 63), np.uint8), k, k)


NETNS_SCRIPT = """
import sys, threading, numpy as np
sys.path[:0] = [{tests!r}, {root!r}]
import test_remote as t
from livegesture.pipeline.engine import make_engine
from livegesture.pipeline.remote.server import Server
from test_pipeline_runner import MemorySource, finished, run_until  # the runner tests' helpers
from test_pipeline_runner import settings as runner_settings
network = t.random_network(np.random.default_rng(5), channels=4, input_shape=(2, 63, 63), num_classes=5)
server = Server(network, t.settings(), t.TOKEN, port=0, log=lambda line: None)
threading.Thread(target=server.serve, daemon=True).start()
with make_engine(network, t.settings(remote=f"127.0.0.1:{{server.port}}")) as engine:
    t.push_frames(engine, 4)
    decisions, seconds, most = t.push_frames(engine, 200, start=4)
server.stop()
print(len(decisions), seconds, most)
"""


def test_pipelining_under_tc_netem_in_a_network_namespace(token_file):
    """40 ms RTT from the kernel: a namespace whose loopback delays 20 ms each way (root, sch_netem)."""
    namespace = f"lg-remote-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", namespace], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    try:
        setup = [["ip", "-n", namespace, "link", "set", "lo", "up"],
                 ["ip", "netns", "exec", namespace, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "20ms"]]
        for command in setup:
            if subprocess.run(command, capture_output=True).returncode != 0:
                pytest.skip(f"{' '.join(command[3:])}: not available here (no sch_netem)")
        script = NETNS_SCRIPT.format(tests=str(ROOT / "tests"), root=str(ROOT))
        result = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", script], capture_output=True,
                                text=True, timeout=120, env={**os.environ, "LIVEGESTURE_TOKEN_FILE": str(token_file)})
        assert result.returncode == 0, result.stderr
        count, seconds, most = result.stdout.split()
        assert int(count) == 50 and int(most) >= 16 and float(seconds) < 4.0  # one round trip per frame: 8 s
    finally:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


def test_waiting_for_answers_returns_each_decision_as_it_arrives_not_once_every_frame_is_answered(network, serving):
    """What the worker does at a replay's end: a window's decision comes back while a later
    frame's answer is still on its way (``flush`` would wait for that one too)."""
    from livegesture.pipeline.remote.testing import DelayLink

    server = serving()
    link = DelayLink(server.server.port, one_way_s=0.1)
    try:
        with make_engine(network, settings(remote=f"127.0.0.1:{link.port}")) as engine:
            window = engine.settings.clear_every
            push_frames(engine, window)  # the link up and warm
            for k in range(window, 2 * window):
                assert engine.push(push_frame(k)) == []
            time.sleep(0.1)  # half the round trip: the window's answer is on its way
            assert engine.push(push_frame(2 * window)) == []  # answered 0.1 s after the window
            deadline, decisions = time.monotonic() + REPLY_S, []
            while not decisions:
                assert time.monotonic() < deadline, "no decision"
                decisions = engine.take_answers(REPLY_S)
            assert [d.frame_index for d in decisions] == [2 * window - 1]
            assert engine.awaiting_answers and engine.in_flight == 1
            assert engine.flush() == [] and not engine.awaiting_answers
    finally:
        link.close()


def test_a_wait_for_answers_ends_at_a_wake_up_from_another_thread_and_a_stale_one_ends_only_the_next(network,
                                                                                                       serving):
    """The worker waits for answers and frames at once: the integrator's wake-up (a frame ready)
    ends the wait at once, not after ``wait_s``; one that came while nothing waited ends the next
    wait and is then cleared."""
    from livegesture.pipeline.remote.testing import DelayLink

    server = serving()
    link = DelayLink(server.server.port, one_way_s=0.3)  # no answer within 0.6 s of a push
    try:
        with make_engine(network, settings(remote=f"127.0.0.1:{link.port}")) as engine:
            engine.push(push_frame(0))
            engine.wake()  # stale: nothing waits
            began = time.monotonic()
            assert engine.take_answers(REPLY_S) == []
            assert time.monotonic() - began < 0.5
            threading.Timer(0.2, engine.wake).start()
            began = time.monotonic()
            assert engine.take_answers(REPLY_S) == []
            assert 0.15 < time.monotonic() - began < 0.5, "the wait did not end at the wake-up"
            assert engine.awaiting_answers
    finally:
        link.close()


def test_a_live_decision_is_published_when_it_arrives_not_with_the_next_frame(network, serving):
    server = serving()
    source = MemorySource()  # fed by hand and never ended: no later frame pushes the answer out
    # 2,000 events in 1 s would be a quiet scene, whose first frame decides at once: no gate here
    chosen = settings(remote=server.address, speed=1.0, min_event_rate=0.0)
    with Pipeline(source, network, chosen) as pipeline:
        for batch in np.array_split(np.concatenate(event_batches(2_000)), 4):  # 4 frames: one window
            source.feed(batch)
        deadline = time.monotonic() + 10
        decisions = []
        while not decisions:
            assert time.monotonic() < deadline, "the decision was not published"
            time.sleep(0.02)
            decisions += pipeline.poll().decisions
    assert [d.frame_index for d in decisions] == [3]


def test_live_frames_the_server_cannot_keep_up_with_are_dropped_oldest_first_and_counted(network, serving):
    from livegesture.pipeline.remote.testing import DelayLink

    server = serving()
    link = DelayLink(server.server.port, one_way_s=0.020)
    batches = event_batches(200_000, seed=3)  # up to 400 frames at once: more than the link carries
    try:
        # no quiet-scene gate: a frame whose events straddle dropped batches spans a gap in time and
        # would read as a quiet scene, with a decision of its own
        chosen = settings(remote=f"127.0.0.1:{link.port}", min_event_rate=0.0)
        with Pipeline(MemorySource(batches), network, chosen) as pipeline:
            stats = run_until(pipeline, finished, []).stats
    finally:
        link.close()
    assert stats.dropped_frames > 0 and stats.lost_frames == 0  # dropped by the live policy, none lost
    assert stats.frames_stepped == stats.frames - stats.dropped_frames
    assert stats.decisions == stats.frames_stepped // 4
