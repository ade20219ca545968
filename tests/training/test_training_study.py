"""The study runner (training.study) end to end on tiny data: every variant and seed, spreads, resume bit for
bit, the shipped study configs (the seed paper's Table 2 and loss ablation at CPU and paper scale)."""

from __future__ import annotations

import math

import numpy as np

from tests.helpers.paths import REPO
from tests.helpers.study import tiny_study

# ----------------------------------------------------------------------------- training.study


def test_study_runs_every_variant_and_seed_and_reports_spreads(tmp_path, capsys):
    import json

    from training.study import main as study_main

    cfg, args = tiny_study(tmp_path)
    assert study_main(args) == 0
    out = tmp_path / "s" / "out"
    table = (out / "results.md").read_text()
    for label in ("LeNet, multi-loss", "MobileNetV3, regression only", "*predict the training mean*"):
        assert f"| {label} |" in table
    assert "## test_compare_faces (n=5)" in table and "## validation split" in table
    assert " ± " in table  # two seeds: mean ± sd
    assert "Command: `python -m training.study --config" in table and "--resume" not in table
    runs = {p.stem for p in (out / "runs").glob("*.json")}
    assert runs == {"a_s0", "a_s1", "b_s0", "b_s1"}
    r = json.loads((out / "runs" / "b_s1.json").read_text())
    assert r["steps"] == 4 and r["seed"] == 1 and r["bn_recalibrated_on"] == 8  # MobileNetV3 has BatchNorm
    assert json.loads((out / "runs" / "a_s0.json").read_text())["bn_recalibrated_on"] == 0  # LeNet has none
    assert [h["step"] for h in r["history"]] == [2, 4]
    assert set(r["eval"]) == {"validation", "test_compare_faces"} and r["baseline"]["validation"]["n"] == 3
    rows = list(csv_rows(out / "results.csv"))
    assert len(rows) == 4 * 2  # four runs x (validation + one test set)
    for name in ("curves_yaw", "curves_pitch", "curves_roll", "summary"):
        assert (out / f"{name}.png").stat().st_size > 5000
    # paired difference against the reference, same seeds
    summary = json.loads((out / "results.json").read_text())
    b = next(v for v in summary["variants"] if v["key"] == "b")["datasets"]["test_compare_faces"]
    a_runs = {s: json.loads((out / "runs" / f"a_s{s}.json").read_text()) for s in (0, 1)}
    b_runs = {s: json.loads((out / "runs" / f"b_s{s}.json").read_text()) for s in (0, 1)}
    test = "test_compare_faces"
    diffs = [b_runs[s]["eval"][test]["mae"]["mean"] - a_runs[s]["eval"][test]["mae"]["mean"] for s in (0, 1)]
    assert math.isclose(b["diff_vs_ref"][0], float(np.mean(diffs)), rel_tol=1e-9)
    # an existing study is not overwritten without --resume; with it, finished runs are reused as they are
    capsys.readouterr()
    assert study_main(args) == 2 and "--resume" in capsys.readouterr().err
    before = (out / "runs" / "b_s1.json").read_text()
    assert study_main([*args, "--resume"]) == 0
    assert (out / "runs" / "b_s1.json").read_text() == before


def csv_rows(path):
    import csv

    with path.open(newline="") as fh:
        yield from csv.DictReader(fh)


def test_study_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, capsys):
    import json

    from training.study import main as study_main

    _, whole = tiny_study(tmp_path, "whole")
    assert study_main([*whole, "--only", "b", "--seeds", "1"]) == 0
    _, cut = tiny_study(tmp_path, "cut")
    # first invocation stops after one of the two epochs (an interruption), the second resumes it
    assert study_main([*cut, "--only", "b", "--seeds", "1", "--set", "run.stop_after=1"]) == 0
    assert not (tmp_path / "cut" / "out" / "runs" / "b_s1.json").exists()
    assert (tmp_path / "cut" / "runs" / "b_s1" / "last.pt").exists()
    assert study_main([*cut, "--only", "b", "--seeds", "1", "--resume"]) == 0
    a = json.loads((tmp_path / "whole" / "out" / "runs" / "b_s1.json").read_text())
    b = json.loads((tmp_path / "cut" / "out" / "runs" / "b_s1.json").read_text())
    assert a["eval"] == b["eval"] and a["steps"] == b["steps"] == 4  # bit for bit on CPU
    # a resumed run with other settings is refused, naming the difference
    capsys.readouterr()
    rc = study_main([*cut, "--only", "b", "--seeds", "1", "--resume", "--set", "optim.lr=0.01"])
    assert rc == 2 and "other settings" in capsys.readouterr().err


def test_study_configs_load_and_match_their_studies():
    from training.study_spec import load_study, run_config

    root = REPO / "training" / "configs"
    losses, base = load_study(root / "study_losses.toml")
    assert {v.key for v in losses.variants} == {"multi", "cls", "reg", "soft", "multi_a1"}
    assert len(losses.seeds) >= 3
    cfgs = {v.key: run_config(base, losses, v, 0) for v in losses.variants}
    assert {(c.loss.kind, c.loss.target, c.loss.alpha) for c in cfgs.values()} == {
        ("multi", "hard", 0.05), ("cls", "hard", 0.05), ("reg", "hard", 0.05), ("multi", "soft", 0.05),
        ("multi", "hard", 1.0)}
    assert {c.model.backbone for c in cfgs.values()} == {"mobilenet_v3_small"}  # one backbone, one recipe
    backbones, base = load_study(root / "study_backbones.toml")
    cfgs = [run_config(base, backbones, v, 0) for v in backbones.variants]
    assert [c.model.backbone for c in cfgs] == ["resnet18", "alexnet", "model1", "lenet", "resnet50"]
    assert len({(c.model.input_size, c.optim.epochs, c.optim.max_steps_per_epoch, c.optim.lr,
                 c.optim.batch_size, c.loss.kind) for c in cfgs}) == 1  # identical except the backbone
    paper, base = load_study(root / "study_paper_300wlp.toml")  # the seed's six models, its own protocol
    rows = {(c.model.backbone, c.loss.kind) for c in (run_config(base, paper, v, 0) for v in paper.variants)}
    assert rows == {("resnet50", "multi"), ("alexnet", "multi"), ("lenet", "multi"), ("model1", "multi"),
                    ("resnet50", "cls"), ("resnet50", "reg")} and base.data.train == "w300lp"
    gpu, base = load_study(root / "study_resnet50_gpu.toml")
    for v in gpu.variants:
        c = run_config(base, gpu, v, 0)
        assert (c.model.backbone, c.model.input_size, c.optim.optimizer, c.optim.lr, c.optim.batch_size,
                c.model.init, c.optim.schedule) == ("resnet50", 224, "adam", 1e-4, 16, "xavier", "none")


def test_recalibrate_bn_sets_population_statistics():
    import torch

    from training.study_run import recalibrate_bn

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.BatchNorm1d(3))
    data = [{"image": torch.randn(3) * 2 + 5} for _ in range(64)]
    assert recalibrate_bn(net, data, count=64, batch_size=16) == 64
    x = torch.stack([d["image"] for d in data])
    assert torch.allclose(net[0].running_mean, x.mean(0), atol=1e-5)
    assert not net.training and net[0].momentum == 0.1  # momentum restored, eval mode
    assert recalibrate_bn(torch.nn.Linear(3, 3), data, count=64) == 0  # no BatchNorm: untouched
