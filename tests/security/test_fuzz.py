"""Property-based fuzzing (Hypothesis) of everything a client or a file can hand the daemon: control
requests against a real running pipeline, config tables, model metadata, and session files with damaged
bytes or ill-typed records. Each property is bounded (examples, no per-example deadline) so the whole
file runs in well under two minutes in CI.

Invariants: no exception escapes (every rejection is a one-line error naming the field), the pipeline
keeps publishing, and no published number is ever non-finite.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from posebridge.config import ServeConfig, validate
from posebridge.daemon.control_handlers import recenter, set_params, settable, status
from posebridge.daemon.pipeline import Pipeline
from posebridge.errors import ConfigError, InputFileError, PoseBridgeError
from posebridge.filtering.config import RANGES, FilterConfig
from posebridge.formats.session_file import SessionReader, SessionWriter, check_frame
from posebridge.inference.meta import ModelMeta
from posebridge.output.control import handle_request
from posebridge.tomlconfig import apply
from tests.helpers.paths import PORTRAIT

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1e300, -1e300, 1e-300, 2**62, float("nan"), float("inf")]))
scalars = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=30), st.binary(max_size=30))
values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)
filter_names = st.sampled_from([*RANGES, "kind", "wrap", "mirror", "proces_noise", ""])


def one_line(text: str) -> bool:
    return isinstance(text, str) and "\n" not in text and 0 < len(text) <= 400


# ----------------------------------------------------------------------------- the running pipeline


class StillFrames:
    """A live-like source: the portrait on a 640x480 frame, forever, 30 fps of capture time."""

    name, ended = "still", False

    def __init__(self) -> None:
        img = np.full((480, 640, 3), 100, np.uint8)
        img[90:390, 170:470] = cv2.imread(str(PORTRAIT))
        self.image, self.i = img, 0

    def read(self, timeout=None):
        from posebridge.sources.base import Frame

        self.i += 1
        return Frame(self.image, self.i, 1000.0 + self.i / 30.0, self.name)

    def stats(self) -> dict:
        return {"frames": self.i, "dropped": 0}

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def pipe():
    from posebridge.faces.detectors import create_detector
    from posebridge.faces.tracker import FaceTracker
    from posebridge.inference.estimator import Estimator
    from posebridge.output.transport import Publisher

    cfg = ServeConfig()
    cfg.run.log_every_s = 0
    tracker = FaceTracker(create_detector("haar"), redetect_every=30)
    p = Pipeline(cfg, StillFrames(), tracker, Estimator.load("posebridge-small", device="cpu"),
                 Publisher("tcp://127.0.0.1:0"))
    for _ in range(3):
        p.step()
    yield p
    p.close()


def restore_defaults(p: Pipeline) -> None:
    """Default filter settings, no mirror, no neutral pose: the state the module's pipeline started in."""
    with p.lock:
        p.filter_config = FilterConfig()
        p.streams.set_config(p.filter_config)
        p.cfg.publish.mirror = False
    recenter(p, reset=True)
    assert p.filter_config.to_dict() == FilterConfig().to_dict()


def handlers(p: Pipeline) -> dict:
    return {"status": lambda req: status(p), "set": lambda req: _set(p, req),
            "recenter": lambda req: {"neutral": recenter(p, bool(req.get("reset", False)))}}


def _set(p: Pipeline, req: dict) -> dict:
    params = req.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError("set: 'params' must be a non-empty map")
    set_params(p, **params)
    return {"params": settable(p)}


requests = st.one_of(
    st.fixed_dictionaries({"cmd": st.just("set"),
                           "params": st.dictionaries(filter_names, values, max_size=4)}),
    st.fixed_dictionaries({"cmd": st.sampled_from(["status", "recenter", "set", "dance", ""]),
                           "reset": values, "params": values}),
    values,
)


@FUZZ
@given(req=requests)
def test_control_requests_never_break_the_stream(pipe, req):
    restore_defaults(pipe)  # every example starts from the same state, whatever the last one set
    try:
        raw = msgpack.packb(req, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return  # not encodable: a client cannot send it either
    reply = handle_request([raw], handlers(pipe))
    assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool)
    if not reply["ok"]:
        assert one_line(reply["error"]), reply
    FilterConfig().replace(**{k: v for k, v in pipe.filter_config.to_dict().items()})  # still valid
    for _ in range(2):
        result = pipe.step()
        assert result is not None and result.messages
        for m in result.messages:
            assert all(math.isfinite(x) for x in [*m.q, *m.euler, *m.std, m.t_capture, m.t_publish])
            assert m.raw is None or all(math.isfinite(x) for x in m.raw)


@FUZZ
@given(params=st.fixed_dictionaries({}, optional={n: st.floats(lo, hi) for n, (lo, hi, _) in RANGES.items()}))
@example(params={"process_noise": 0.0, "initial_rate_std": 0.0, "meas_floor_deg": 0.0, "meas_scale": 0.0})
@example(params={"process_noise": 0.0, "dropout_rate_decay_s": 1e-244, "rate_decay_s": 0.0,
                 "gate_rate_s": 5.4, "gate_sigma": 99.0, "meas_floor_deg": 0.0, "meas_scale": 0.0})
def test_any_in_range_filter_settings_keep_outputs_finite(params):
    """Extreme but accepted settings (the documented ranges' corners) never produce a non-finite pose."""
    from posebridge.filtering.kalman import PoseFilter

    try:
        config = FilterConfig().replace(**params)
    except ConfigError:
        return  # an open end of a range
    f = PoseFilter(config)
    rng = np.random.default_rng(0)
    t = 0.0
    for i in range(200):
        t += float(rng.choice([0.001, 0.033, 0.3, 2.0]))
        z = None if i % 17 == 5 else rng.normal(0, 60, 3)
        out = f.update(t, z, rng.uniform(0, 80, 3))
        assert all(math.isfinite(x) for x in (*out.angles, *out.rates, *out.stds))


# ----------------------------------------------------------------------------------- config tables

sections = {"source": ["spec", "realtime"], "model": ["name", "device", "backend", "threads", "zooms"],
            "faces": ["detector", "redetect_every", "detect_in_thread", "all_faces", "jump_ratio",
                      "jump_min_deg", "options", "tracker"],
            "publish": ["address", "hwm", "mirror"], "control": ["enabled", "address"],
            "record": ["path", "video"], "run": ["max_frames", "wait_subscriber_s", "log_every_s"],
            "filter": [*RANGES, "kind", "wrap"]}
tables = st.dictionaries(
    st.sampled_from([*sections, "sauce"]),
    st.one_of(values, st.dictionaries(st.sampled_from([k for ks in sections.values() for k in ks] + ["x"]),
                                      values, max_size=5)),
    max_size=4)


@FUZZ
@given(table=tables)
def test_config_tables_load_or_name_the_problem(table):
    cfg = ServeConfig()
    try:
        apply(cfg, table)
        validate(cfg)
    except ConfigError as exc:
        assert one_line(str(exc)), str(exc)
        return
    assert 1 <= cfg.publish.hwm <= 1_000_000 and 0 <= cfg.model.threads <= 256
    FilterConfig().replace(**cfg.filter)


# ----------------------------------------------------------------------------------- model metadata

GOOD_META = ModelMeta("m", "mobilenet_v3_small", input_size=112).to_dict()


@FUZZ
@given(path=st.lists(st.sampled_from([*GOOD_META, "num_bins", "yaw", "mean", "box_map", "extra", "crop",
                                      "tta_zooms", "filter"]), min_size=1, max_size=3), value=values)
@example(path=["name", "name"], value={f"key{i}\t": {f"sub{j}": 1e16 for j in range(4)} for i in range(6)})
def test_model_metadata_validates_every_field(path, value):
    import copy

    meta = copy.deepcopy(GOOD_META)
    node = meta
    for key in path[:-1]:
        nxt = node.get(key) if isinstance(node, dict) else None
        if not isinstance(nxt, dict):
            nxt = {}
            node[key] = nxt
        node = nxt
    node[path[-1]] = value
    try:
        m = ModelMeta.from_dict(meta)
    except ConfigError as exc:
        assert one_line(str(exc)), str(exc)
        return
    assert 16 <= m.input_size <= 512 and all(s > 0 and math.isfinite(s) for s in m.std)
    assert all(2 <= b.num_bins <= 1000 and b.width > 0 for b in m.bins.values())


# ------------------------------------------------------------------------------------- session files


def _session(path: Path, frames: int = 30) -> bytes:
    with SessionWriter(path, header={"source": "fuzz"}) as w:
        for i in range(frames):
            w.write_frame(frame_index=i, t_capture=100.0 + i / 30, frame_size=(640, 480),
                          faces=[{"face_id": 0, "box": [1.0, 2.0, 3.0, 4.0], "raw": [float(i), 0.0, 0.0],
                                  "std": [3.0, 3.0, 3.0]}], timings={"infer": 1.0})
    return path.read_bytes()


@pytest.fixture(scope="module")
def session_bytes(tmp_path_factory):
    return _session(tmp_path_factory.mktemp("s") / "base.pbsession")


@pytest.fixture(scope="module")
def session_layout(tmp_path_factory, session_bytes):
    """(start, end, frame) of every frame record of the pristine session file, by byte offset."""
    path = tmp_path_factory.mktemp("l") / "base.pbsession"
    path.write_bytes(session_bytes)
    reader = SessionReader(path)
    out, start = [], reader.good_bytes
    for rec in reader:
        if rec["kind"] == "frame":
            out.append((start, reader.good_bytes, rec))
        start = reader.good_bytes
    assert len(out) == 30
    return out


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.sampled_from(["flip", "cut",
                                                                                               "insert"])),
                      min_size=1, max_size=4))
def test_damaged_session_files_read_what_is_intact(tmp_path_factory, session_bytes, session_layout, edits):
    data = bytearray(session_bytes)
    touched: list[int] = []  # positions edited (in the file as it was at that edit)
    for pos, byte, kind in edits:
        pos = 16 + pos % max(1, len(data) - 16)
        touched.append(pos)
        if kind == "flip":
            data[pos] ^= byte or 1
        elif kind == "cut":
            del data[pos:pos + byte]
        else:
            data[pos:pos] = bytes([byte]) * 7
    path = tmp_path_factory.mktemp("d") / "damaged.pbsession"
    path.write_bytes(bytes(data))
    try:
        reader = SessionReader(path)
    except InputFileError as exc:  # only when the preamble or header itself is gone
        assert one_line(str(exc))
        return
    frames = list(reader.frames())
    assert len(frames) <= 30 and [f["index"] for f in frames] == sorted(f["index"] for f in frames)
    read = {f["index"]: f for f in frames}
    # every frame stored wholly before the first damaged byte is read back exactly ...
    first = min(touched)
    for start, end, rec in session_layout:
        if end <= first:
            assert read.get(rec["index"]) == rec, f"intact frame {rec['index']} (bytes {start}-{end}) lost"
    # ... and with bytes flipped in place (no shift), so is every frame no flip touched: reading resumes
    if all(kind == "flip" for *_, kind in edits):
        for start, end, rec in session_layout:
            if not any(start <= p < end for p in touched):
                assert read.get(rec["index"]) == rec, f"intact frame {rec['index']} after the damage lost"


frame_records = st.fixed_dictionaries({"kind": st.just("frame")}, optional={
    "index": values, "t_capture": values, "frame": values, "faces": st.one_of(values, st.lists(
        st.dictionaries(st.sampled_from(["face_id", "raw", "std", "box"]), values, max_size=4), max_size=2)),
    "messages": values, "jpeg": values})


@FUZZ
@given(records=st.lists(frame_records, min_size=1, max_size=5))
def test_ill_typed_records_are_skipped_by_replay(tmp_path_factory, records):
    from posebridge.commands.replay import refiltered

    path = tmp_path_factory.mktemp("t") / "typed.pbsession"
    written: list[dict] = []
    with SessionWriter(path) as w:
        for rec in records:
            try:
                w.write_record(rec)
                written.append(rec)
            except (TypeError, ValueError, OverflowError):
                pass
    reader = SessionReader(path)
    good = list(reader.frames())
    well_typed = [r for r in written if check_frame(r) == ""]
    assert len(good) == len(well_typed)  # every well-typed record written is read back ...
    assert reader.invalid_frames == len(written) - len(good)  # ... and every ill-typed one counted
    for _, msgs in refiltered(reader.checked(), FilterConfig(), False, False, {}):
        for m in msgs:
            assert all(math.isfinite(x) for x in [*m.q, *m.euler])


def test_errors_are_posebridge_errors():
    assert issubclass(ConfigError, PoseBridgeError) and issubclass(InputFileError, PoseBridgeError)
