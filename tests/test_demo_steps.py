"""The demo's step counter and its estimate of the time left (demo/steps.py), without running the demo."""

from __future__ import annotations

from pathlib import Path

import pytest

from biasprobe.demo.pipeline import COMPARE_MODELS, VARIANTS, DemoPlan, demo_steps
from biasprobe.demo.steps import DemoSteps, Step, time_left


@pytest.mark.parametrize("quick", [True, False])
def test_the_plan_counts_the_steps_that_run(quick: bool) -> None:
    plan = DemoPlan.make(quick=quick)
    steps = demo_steps(plan)
    per_arch = 4 * len(VARIANTS) + 1 + 1  # train, invariance, positions and layers of each variant; index, score
    # photos: invariance, the three models compared, positions, layers
    assert len(steps) == 1 + per_arch * len(plan.archs) + 3 + len(COMPARE_MODELS) + 1 == (22 if quick else 36)
    assert len({s.title for s in steps}) == len(steps)
    assert steps[-1].title == "write the HTML report"


def test_lines_count_up_to_the_total_and_estimate_the_time_left(tmp_path: Path, capsys, monkeypatch) -> None:
    clock = iter(float(t) for t in [0, 0, 0, 60, 60, 60, 180, 180, 180, 300, 300, 300, 420])
    monkeypatch.setattr("biasprobe.demo.steps.time.perf_counter", lambda: next(clock))
    steps = DemoSteps([Step("a", 1), Step("b", 2), Step("c", 2), Step("d", 1)], tmp_path)
    for title in "abc":
        steps.run(title, tmp_path / title, {"x": 1}, lambda t=title: (tmp_path / t).write_text("done"))
    steps.always("d", lambda: None)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "[1/4] a (at 0 s)",  # no basis yet
        "[2/4] b (at 60 s, about 5 min left)",  # a took 60 s for weight 1: b, c, d are weight 5
        "[3/4] c (at 180 s, about 3 min left)",  # 180 s for weight 3: c and d are weight 3
        "[4/4] d (at 300 s, about 1 min left)",
    ]
    assert steps.timings == {"a": 60.0, "b": 120.0, "c": 120.0, "d": 120.0}


def test_kept_steps_give_no_basis_and_a_step_off_the_plan_is_a_bug(tmp_path: Path, capsys) -> None:
    first = DemoSteps([Step("a", 1), Step("b", 1)], tmp_path)
    first.run("a", tmp_path / "a", {}, lambda: (tmp_path / "a").write_text("done"))
    again = DemoSteps([Step("a", 1), Step("b", 1)], tmp_path)
    again.run("a", tmp_path / "a", {}, lambda: pytest.fail("a kept step runs"))
    assert again.estimate() is None
    assert capsys.readouterr().out.splitlines()[-1] == f"[1/2] a: already done, kept ({tmp_path / 'a'})"
    with pytest.raises(RuntimeError, match="demo step 2 is 'c', but the plan names 'b'"):
        again.run("c", tmp_path / "c", {}, lambda: None)


def test_time_left_wording() -> None:
    assert time_left(59) == "under a minute left"
    assert time_left(60) == "about 1 min left"
    assert time_left(149) == "about 2 min left"
    assert time_left(150) == "about 3 min left"
