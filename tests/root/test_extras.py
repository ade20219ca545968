"""A lean install (`pip install posebridge`, no extras): every command that needs an extra says which in
one line (exit 2) instead of a traceback. Each case runs in a child process where the extra's modules
cannot be imported, as on a machine without them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.helpers.paths import REPO

BLOCK = textwrap.dedent("""
    import sys
    BLOCKED = {blocked!r}
    class _Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked in this test")
            return None
    sys.meta_path.insert(0, _Blocked())
    from posebridge.cli import main
    sys.exit(main({argv!r}))
""")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from tests.helpers.clips import still_clip

    return str(still_clip(tmp_path_factory.mktemp("extras") / "c.avi", seconds=0.3))


@pytest.mark.parametrize("blocked, argv, extra", [
    (("scipy", "matplotlib"), ["eval", "aflw2000", "DIR"], "eval"),
    (("onnx", "tflite2onnx"), ["models", "pull", "blazeface"], "convert"),
    (("dlib",), ["serve", "--source", "CLIP", "--detector", "dlib_hog", "--no-control"], "dlib"),
    (("onnx",), ["serve", "--source", "CLIP", "--backend", "onnx-int8", "--no-control"], "convert"),
    (("onnx",), ["estimate", "CLIP", "--backend", "onnx-int8"], "convert"),
])
def test_commands_that_need_an_extra_say_which(clip, blocked, argv, extra):
    argv = [clip if a == "CLIP" else a for a in argv]
    if argv[0] == "serve":
        argv += ["--publish", "tcp://127.0.0.1:0"]
    proc = subprocess.run([sys.executable, "-c", BLOCK.format(blocked=set(blocked), argv=argv)], cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(err) == 1 and f"pip install 'posebridge[{extra}]'" in err[0], proc.stderr[-2000:]
