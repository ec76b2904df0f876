from nniray import AssessResult, Assessor


class StopLow(Assessor):
    """Bad for a trial whose first intermediate value is below ``threshold`` (once it has
    reported two)."""

    def __init__(self, threshold=0.5):
        self.threshold = threshold

    def assess_trial(self, trial_job_id, trial_history):
        if len(trial_history) >= 2 and trial_history[0] < self.threshold:
            return AssessResult.Bad
        return AssessResult.Good
