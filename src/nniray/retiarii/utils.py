"""``nni.retiarii.utils``."""
from nniray.nas.utils import original_state_dict_hooks  # noqa: F401
