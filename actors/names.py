"""Names of an experiment's actors in the Ray namespace ``nniray``.  Everything an experiment
runs is named after its id, so two experiments on one cluster never see each other's actors."""
NAMESPACE = "nniray"


def controller(exp_id: str) -> str:
    return f"nniray-controller-{exp_id}"


def tuner(exp_id: str) -> str:
    return f"nniray-tuner-{exp_id}"


def assessor(exp_id: str) -> str:
    return f"nniray-assessor-{exp_id}"


def advisor(exp_id: str) -> str:
    return f"nniray-advisor-{exp_id}"


def runner(exp_id: str, index: int) -> str:
    return f"nniray-runner-{exp_id}-{index}"
