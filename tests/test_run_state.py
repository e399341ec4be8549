"""RunState: the run progress every checkpoint saves, what a resume reads back, what hooks see."""

import json

import pytest

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.data import synthetic_text_dataset
from cl_prompts.run import RunConfig, RunState, run


def test_round_trip_through_json():
    state = RunState()
    state.record([50.0], [None], 1.5, 0.5)
    state.record([40.0, 60.0], [None, None], 2.0, 0.25)
    state.train_samples, state.train_steps = 12, 3
    back = RunState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert back == state
    assert back.next_experience == 2 and back.accuracy == [[50.0], [40.0, 60.0]]


def test_a_state_saved_before_the_later_fields_still_loads():
    saved = {"next_experience": 1, "accuracy": [[10.0]], "task_id": [[None]], "train_seconds": [1.0],
             "eval_seconds": [0.1], "train_samples": 4}  # the fields a resume has always needed
    state = RunState.from_dict(saved)
    assert state.train_steps == 0 and state.world_sizes == [] and state.calibration is None
    assert set(RunState.REQUIRED) == set(saved)


def test_unknown_entries_are_refused_by_name():
    with pytest.raises(ValueError, match=r"\['from_the_future'\]"):
        RunState.from_dict({"next_experience": 0, "from_the_future": 1})


def test_record_needs_one_value_per_seen_experience():
    with pytest.raises(AssertionError, match="one value per experience"):
        RunState().record([1.0, 2.0], [None, None], 0.0, 0.0)


def test_hooks_see_the_state_of_each_experience(tmp_path):
    seen = []
    data = synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=4, test_per_class=2)
    config = RunConfig(method="ncm", backbone="tiny-bert", out=str(tmp_path), progress=False, plots=False)
    results = run(config, backbone=tiny_text_backbone(), dataset=data,
                  on_experience_end=lambda e, s: seen.append((e, s.next_experience, len(s.accuracy), s.train_samples)))
    assert [(e, n, rows) for e, n, rows, _ in seen] == [(0, 1, 1), (1, 2, 2), (2, 3, 3)]
    assert seen[-1][3] == results["train_samples"] == 24
    states = [json.loads(p.read_text())["state"] for p in (tmp_path / "checkpoint").rglob("state.json")]
    last = RunState.from_dict(max(states, key=lambda s: s["next_experience"]))
    assert last.next_experience == 3 and last.accuracy[-1] == results["accuracy_matrix"][-1]


def test_the_final_subsample_row_round_trips_and_out_of_range_values_are_refused():
    from cl_prompts.run.checkpoints import check_state

    state = RunState()
    state.record([50.0], [None], 1.0, 0.1)
    state.final_subsample = [40.0]
    saved = json.loads(json.dumps(state.to_dict()))
    assert RunState.from_dict(saved).final_subsample == [40.0]
    check_state(saved, 1, "state")
    with pytest.raises(ValueError, match="final_subsample"):
        check_state({**saved, "final_subsample": [120.0]}, 1, "state")
