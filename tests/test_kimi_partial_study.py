"""The shipped partial-rollout runs (reasoning.kimi_partial): what each setting trains on."""

import pytest

from rlllm_course.reasoning.kimi_partial import BUDGET, SEEDS, SETTINGS, STEPS, load_partial_runs, train_partial_run


def test_the_shipped_runs_train_on_what_their_setting_says():
    runs = load_partial_runs()
    assert set(runs) == set(SETTINGS)
    for setting, histories in runs.items():
        assert len(histories) == len(SEEDS)
        for history in histories:
            assert [log["step"] for log in history] == list(range(STEPS))
            trained = [log for log in history if log["groups"]]
            stale = [log["stale_share"] for log in trained]
            if setting == "excluded":
                assert all(s == 0.0 for s in stale)
            else:  # long answers span iterations: most of what is trained late is stale
                assert max(stale) > 0.5
            assert any(log["continued"] for log in history)  # answers did outgrow the budget
            assert sum(log["eval/pass@1"] for log in history if "eval/pass@1" in log) > 0


def test_an_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="setting"):
        train_partial_run("both")
    assert BUDGET >= 1
