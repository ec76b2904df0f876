import torch

import nniray
from nniray.trace import get_trace, is_traceable, trace, trace_copy


def test_trace_class_records_and_rebuilds():
    model = torch.nn.Linear(3, 2)
    opt = nniray.trace(torch.optim.SGD)(model.parameters(), lr=0.5, momentum=0.9)
    assert isinstance(opt, torch.optim.SGD)
    assert is_traceable(opt)
    info = get_trace(opt)
    assert info.symbol is torch.optim.SGD
    # the generator was materialised, so the call can be replayed
    assert isinstance(info.args[0], list) and len(info.args[0]) == 2
    assert info.kwargs == {"lr": 0.5, "momentum": 0.9}
    copy = trace_copy(opt, lr=0.1)
    assert copy is not opt and isinstance(copy, torch.optim.SGD)
    assert copy.defaults["lr"] == 0.1 and copy.defaults["momentum"] == 0.9
    assert opt.trace_kwargs == {"lr": 0.5, "momentum": 0.9}


def test_trace_is_cached_and_not_traceable_plain():
    assert trace(torch.optim.Adam) is trace(torch.optim.Adam)
    plain = torch.optim.Adam(torch.nn.Linear(2, 2).parameters())
    assert not is_traceable(plain)


def test_trace_decorator_and_function():
    @nniray.trace
    class Box:
        def __init__(self, a, b=2):
            self.a, self.b = a, b

    box = Box(1, b=3)
    assert isinstance(box, Box) and box.trace_args == [1] and box.trace_kwargs == {"b": 3}
    assert trace_copy(box).b == 3

    def make(n):
        return {"n": n} if False else torch.nn.Linear(n, n)

    layer = trace(make)(4)
    assert get_trace(layer).args == (4,)
    assert trace_copy(layer).in_features == 4


def test_bound_arguments_by_name():
    model = torch.nn.Linear(3, 2)
    opt = trace(torch.optim.SGD)(model.parameters(), 0.3)
    assert get_trace(opt).bound_arguments()["lr"] == 0.3


def test_traced_objects_pickle_with_their_record():
    import copy
    import pickle
    model = torch.nn.Linear(3, 2)
    opt = nniray.trace(torch.optim.SGD)(model.parameters(), lr=0.25)
    for clone in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)):
        assert isinstance(clone, torch.optim.SGD) and type(clone).__name__ == "SGD"
        assert clone.trace_kwargs == {"lr": 0.25}
        assert clone.param_groups[0]["lr"] == 0.25
