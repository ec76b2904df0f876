"""MedianstopAssessor: NNI's median stopping rule on hand-made histories."""
import pytest

from nniray.assessor import AssessResult
from nniray.strategies.medianstop import MedianstopAssessor

Good, Bad = AssessResult.Good, AssessResult.Bad


def completed(assessor, histories):
    for tid, h in histories.items():
        assessor.assess_trial(tid, h)
        assessor.trial_end(tid, True)


# running averages at step 2: A [1,2,3] -> 1.5, B [3,3,3] -> 3, C [0,0,6] -> 0
HIST = {"A": [1, 2, 3], "B": [3, 3, 3], "C": [0, 0, 6]}


def test_maximize_rule():
    a = MedianstopAssessor()  # maximize, start_step 0
    completed(a, HIST)
    assert a.assess_trial("X", [0.5, 1.4]) is Bad  # best 1.4 < median 1.5
    assert a.assess_trial("Y", [0.5, 1.5]) is Good  # equal is not strictly worse
    assert a.assess_trial("Z", [2.0, 0.1]) is Good  # the best so far counts, not the last
    # step 3: averages A 2, B 3, C 2 -> median 2
    assert a.assess_trial("X", [0.5, 1.4, 1.9]) is Bad
    assert a.assess_trial("W", [0.5, 1.4, 2.0]) is Good
    # no completed trial reached step 4
    assert a.assess_trial("X", [0, 0, 0, 0]) is Good


def test_minimize_rule():
    a = MedianstopAssessor(optimize_mode="minimize")
    completed(a, HIST)
    assert a.assess_trial("X", [2.0, 1.6]) is Bad  # best (min) 1.6 > median 1.5
    assert a.assess_trial("Y", [2.0, 1.5]) is Good
    assert a.assess_trial("Z", [0.2, 9.0]) is Good


def test_even_count_uses_the_lenient_middle():
    mx, mn = MedianstopAssessor("maximize"), MedianstopAssessor("minimize")
    for a in (mx, mn):
        completed(a, {"A": [1, 2], "B": [3, 3]})  # step-2 averages 1.5 and 3
    assert mx.assess_trial("X", [1.6, 1.6]) is Good  # threshold 1.5 (lower middle)
    assert mx.assess_trial("X2", [1.4, 1.4]) is Bad
    assert mn.assess_trial("Y", [2.9, 2.9]) is Good  # threshold 3 (upper middle)
    assert mn.assess_trial("Y2", [3.1, 3.1]) is Bad


def test_start_step_and_first_results():
    a = MedianstopAssessor(start_step=3)
    completed(a, HIST)
    assert a.assess_trial("X", [-5]) is Good
    assert a.assess_trial("X", [-5, -5]) is Good  # fewer than start_step results: not judged
    assert a.assess_trial("X", [-5, -5, -5]) is Bad  # judged once start_step results are in
    b = MedianstopAssessor()
    assert b.assess_trial("X", [-5]) is Good  # nothing completed yet


def test_only_successful_completed_trials_count_and_dict_values():
    a = MedianstopAssessor()
    a.assess_trial("F", [{"default": 100, "x": 1}])
    a.trial_end("F", False)  # failed / early-stopped: ignored
    assert a.assess_trial("X", [{"default": 0.1}]) is Good
    a.trial_end("X", True)  # completed with average 0.1 at step 1
    assert a.assess_trial("Y", [{"default": 0.05}]) is Bad
    assert a.assess_trial("Z", [0.1]) is Good
    a.trial_end("never-seen", True)  # harmless


def test_bad_args():
    with pytest.raises(ValueError, match="start_step"):
        MedianstopAssessor(start_step=-1)
    with pytest.raises(ValueError, match="optimize_mode"):
        MedianstopAssessor(optimize_mode="up")
