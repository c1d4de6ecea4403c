"""The shared mechanisms every stage uses: typed records, the run manifest, units of work."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from biasprobe.core.errors import InputError
from biasprobe.core.manifest import RunManifest, SettingsMismatchError
from biasprobe.core.records import FormatError, JsonRecord
from biasprobe.engine.units import Unit, UnitPlan, consecutive_runs, run_local


@dataclass(frozen=True)
class _Example(JsonRecord):
    FORMAT = "biasprobe.example"
    FORMAT_VERSION = 3

    name: str
    sizes: list[int]


def test_records_round_trip_and_refuse_other_versions(tmp_path):
    path = _Example("a", [1, 2]).write(tmp_path / "x.json")
    data = json.loads(path.read_text())
    assert list(data)[:2] == ["format", "format_version"] and data["format_version"] == 3
    assert _Example.read(path) == _Example("a", [1, 2])
    path.write_text(json.dumps({**data, "format_version": 2}))
    with pytest.raises(FormatError, match=r"version 2; this biasprobe reads 'biasprobe.example' version 3"):
        _Example.read(path)
    path.write_text(json.dumps({**data, "extra": 1}))
    with pytest.raises(FormatError, match="unknown"):
        _Example.read(path)
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="does not hold a JSON object"):
        _Example.read(path)


def test_manifest_claims_compares_and_names_the_keys_that_differ(tmp_path):
    path = tmp_path / "run" / "run.json"
    first = RunManifest.at(path, {"batch_size": 8, "shape": (1, 2), "model": {"name": "m"}})
    assert first.differences() == [] and first.stored() is None
    first.claim(what="a partial run", hint="resume with the same settings")
    assert json.loads(path.read_text()) == {"batch_size": 8, "model": {"name": "m"}, "shape": [1, 2]}
    same = RunManifest.at(path, {"shape": [1, 2], "model": {"name": "m"}, "batch_size": 8})
    assert same.matches()
    same.claim(what="a partial run", hint="x")  # tuples and lists compare alike
    other = RunManifest.at(path, {"batch_size": 4, "shape": (1, 2), "model": {"name": "n"}})
    with pytest.raises(SettingsMismatchError) as err:
        other.claim(what="a partial run", hint="delete it")
    assert str(err.value) == f"{path.parent} holds a partial run with different batch_size, model; delete it"
    assert not other.matches()


def test_unit_plan_cuts_positions_and_resumes_any_subset(tmp_path):
    plan = UnitPlan(tmp_path, count=10, size=4)
    assert plan.units == [Unit(0, 0, 4), Unit(1, 4, 8), Unit(2, 8, 10)]
    assert UnitPlan(tmp_path, count=0, size=4).units == [Unit(0, 0, 0)]
    with pytest.raises(InputError):
        UnitPlan(tmp_path, count=3, size=0)
    assert consecutive_runs([Unit(0, 0, 1), Unit(1, 1, 2), Unit(3, 3, 4)]) == [[Unit(0, 0, 1), Unit(1, 1, 2)], [Unit(3, 3, 4)]]

    class Work:
        def __init__(self) -> None:
            self.calls: list[list[int]] = []

        def run(self, units, finished):
            self.calls.append([u.number for u in units])
            for unit in units:
                finished(unit)

    plan.mark_done(Unit(1, 4, 8))
    work = Work()
    assert [u.number for u in run_local(work, plan)] == [0, 2]
    assert work.calls == [[0], [2]]  # two streams: unit 1 was already done
    assert plan.pending() == [] and run_local(work, plan) == []
    # a marker describing another cut of the positions does not count as done
    (tmp_path / "done" / "000000.json").write_text(json.dumps({"number": 0, "start": 0, "stop": 5}))
    assert plan.pending() == [Unit(0, 0, 4)]
