"""NNI's ``nni.experiment.config``: the config classes of every platform (re-exports of ``nniray.config``)."""
from nniray.config import *  # noqa: F401,F403
from nniray.config import __all__  # noqa: F401
