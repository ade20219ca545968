"""The layers: the per-frame runtime (sources, faces, inference, filtering, output, daemon) imports
nothing from PyTorch, the offline tools or training, and `posebridge serve` runs a real clip with the
packaged model while any import of torch fails."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.daemon_proc import ANY, ANY_VIEW
from tests.helpers.paths import REPO

OFFLINE_ROOMS = ("posebridge.models", "posebridge.offline")  # need posebridge[torch] or are offline tools


def runtime_modules() -> list[str]:
    """Every module of the posebridge package but the offline rooms: walked, not listed by hand, so a new
    runtime module is checked the day it is added."""
    import pkgutil

    import posebridge

    names = ["posebridge"]
    for info in pkgutil.walk_packages(posebridge.__path__, "posebridge."):
        if info.name.startswith(OFFLINE_ROOMS) or info.name == "posebridge.__main__":
            continue
        names.append(info.name)
    return sorted(names)


FORBIDDEN = ("torch", "torchvision", "timm", "posebridge.models", "posebridge.offline", "training", "scipy",
             "filterpy", "matplotlib")

# Any `import torch` (or torchvision/timm) fails in the child, as on a machine without the extra.
BLOCK_TORCH = textwrap.dedent("""
    import sys
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision", "timm"):
                raise ImportError(f"{name} is blocked in this test")
            return None
    sys.meta_path.insert(0, _NoTorch())
""")


def run_child(code: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_runtime_modules_import_nothing_heavy_or_offline():
    names = runtime_modules()
    assert {"posebridge.output.vmc", "posebridge.output.opentrack", "posebridge.output.udp",
            "posebridge.output.security", "posebridge.commands.serve", "posebridge.commands.replay",
            "posebridge.commands.record", "posebridge.commands.listen"} <= set(names)
    proc = run_child(f"""
        import importlib, json, sys
        for name in {names!r}:
            importlib.import_module(name)
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r}
                                or any(m.startswith(f + ".") or m == f for f in {FORBIDDEN!r}))))
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_serve_runs_a_clip_with_torch_absent(tmp_path):
    from posebridge.offline.demo import make_clip

    clip = tmp_path / "clip.mp4"
    make_clip(clip, seconds=1.5)
    # the VMC and opentrack receivers: UDP sockets bound here first (the OS picks the ports), held open
    # while serve sends to them
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as vmc, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as opentrack:
        vmc.bind(("127.0.0.1", 0))
        opentrack.bind(("127.0.0.1", 0))
        outputs = ["--control", ANY, "--vmc", f"127.0.0.1:{vmc.getsockname()[1]}",
                   "--opentrack", f"127.0.0.1:{opentrack.getsockname()[1]}", "--view", ANY_VIEW]
        proc = run_child(f"""
            import json, sys
            from posebridge.cli import main
            rc = main(["serve", "--source", {str(clip)!r}, "--publish", {ANY!r},
                       "--detector", "haar", "--record", {str(tmp_path / "s.pbsession")!r}, *{outputs!r}])
            heavy = ("torch", "torchvision", "timm", "training", "scipy", "matplotlib")
            print(json.dumps({{"rc": rc, "torch": "torch" in sys.modules,
                              "heavy": sorted(m for m in sys.modules if m.split(".")[0] in heavy)}}))
        """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "torch": False, "heavy": []}
    from posebridge.formats.session_file import SessionReader

    frames = list(SessionReader(tmp_path / "s.pbsession").frames())
    # served in order to the clip's last frame (index 44 of 45); at the clip's frame rate a busy machine
    # makes serve skip a late frame now and then (its index is missing), so not every index is there
    index = [f["index"] for f in frames]
    assert index == sorted(set(index)) and index[-1] == 44, index
    assert sum(bool(f["faces"]) for f in frames) > 20  # the real model tracked it


@pytest.mark.parametrize("argv, extra", [
    (["models", "import", "x.pkl", "--format", "hopenet", "--name", "h"], "posebridge[torch]"),
    (["serve", "--source", "x.mp4", "--backend", "torch"], None),
])
def test_commands_that_need_torch_say_which_extra(tmp_path, argv, extra):
    if argv[0] == "serve":
        from posebridge.offline.demo import make_clip

        clip = tmp_path / "c.mp4"
        make_clip(clip, seconds=0.2)
        argv = ["serve", "--source", str(clip), "--backend", "torch", "--no-control", "--publish",
                "tcp://127.0.0.1:0"]
    proc = run_child(f"""
        import sys
        from posebridge.cli import main
        sys.exit(main({argv!r}))
    """)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "pip install 'posebridge[torch]'" in err[0], proc.stderr
