"""A command trial: an NNI trial script whose only change is the import line."""
import nniray as nni

from model import DEFAULTS, evaluate

params = dict(DEFAULTS)
params.update(nni.get_next_parameter() or {})  # {} when run standalone: the defaults are used
accuracy = evaluate(params)
nni.report_final_result(accuracy)
print(f"accuracy {accuracy:.4f} with {params}")
