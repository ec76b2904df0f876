"""NetworkMorphismTuner: graph JSON, torch models, function-preserving morphisms, the search."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nniray.strategies.networkmorphism import NetworkMorphismTuner, json_to_graph
from nniray.strategies.networkmorphism import graph_transformer as T
from nniray.strategies.networkmorphism.nn import CnnGenerator
from nniray.strategies.registry import AlgorithmError, create_algorithm

# The node shapes of NNI's documented example graph (defaults: 32×32×3, 3 blocks of width 64).
NNI_DOC_NODE_SHAPES = [[32, 32, 3], [32, 32, 3], [32, 32, 64], [32, 32, 64], [16, 16, 64], [16, 16, 64],
                       [16, 16, 64], [16, 16, 64], [8, 8, 64], [8, 8, 64], [8, 8, 64], [8, 8, 64],
                       [4, 4, 64], [64], [64], [64], [64], [10]]
NNI_DOC_LAYER_TYPES = ["StubReLU", "StubConv2d", "StubBatchNormalization2d", "StubPooling2d"] * 3 + [
    "StubGlobalPooling2d", "StubDropout2d", "StubDense", "StubReLU", "StubDense"]
TOL = 1e-5  # max |Δ logit| allowed for function preservation (float32 rounding)


def default_graph(shape=(32, 32, 3), n_out=10):
    return CnnGenerator(n_out, shape).generate(3, 64)


def morphed(op: str, seed: int = 0, base=None):
    g = (base or default_graph()).copy()
    assert T.apply_random_operation(g, np.random.default_rng(seed), op) == op
    return g


def test_default_graph_matches_nni_documented_json():
    j = default_graph().to_json()
    assert set(j) == {"input_shape", "weighted", "operation_history", "layer_id_to_input_node_ids",
                      "layer_id_to_output_node_ids", "adj_list", "reverse_adj_list", "node_list", "layer_list"}
    assert j["input_shape"] == [32, 32, 3]
    assert [s for _, s in j["node_list"]] == NNI_DOC_NODE_SHAPES
    assert [desc[0] for _, desc in j["layer_list"]] == NNI_DOC_LAYER_TYPES
    assert j["layer_list"][1][1][:6] == ["StubConv2d", 1, 2, 3, 64, 3]
    assert j["layer_list"][16][1] == ["StubDense", 16, 17, 64, 10]
    assert j["adj_list"]["3"] == [[4, 3]] and j["reverse_adj_list"]["4"] == [[3, 3]]
    assert j["layer_id_to_input_node_ids"]["0"] == [0] and j["layer_id_to_output_node_ids"]["16"] == [17]


def _nni_doc_example_json() -> dict:
    """The example graph of NNI's documentation, in its older short form (conv entries without
    stride/padding)."""
    args = {"StubConv2d": None, "StubBatchNormalization2d": [64], "StubPooling2d": [2, 2, 0],
            "StubDropout2d": [0.25]}
    layers, in_ch = [], 3
    for i, name in enumerate(NNI_DOC_LAYER_TYPES):
        extra = args.get(name, [])
        if name == "StubConv2d":
            extra, in_ch = [in_ch, 64, 3], 64
        if name == "StubDense":
            extra = [64, 64] if i == 14 else [64, 10]
        layers.append([i, [name, i, i + 1, *extra]])
    n = len(layers)
    return {"input_shape": [32, 32, 3], "weighted": False, "operation_history": [],
            "layer_id_to_input_node_ids": {str(i): [i] for i in range(n)},
            "layer_id_to_output_node_ids": {str(i): [i + 1] for i in range(n)},
            "adj_list": {**{str(i): [[i + 1, i]] for i in range(n)}, str(n): []},
            "reverse_adj_list": {"0": [], **{str(i + 1): [[i, i]] for i in range(n)}},
            "node_list": [[i, s] for i, s in enumerate(NNI_DOC_NODE_SHAPES)], "layer_list": layers}


def test_nni_documented_example_json_loads_and_runs():
    g = json_to_graph(json.dumps(_nni_doc_example_json()))
    assert g.extract_descriptor() == default_graph().extract_descriptor()
    assert g.produce_torch_model()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("op", [None, "deeper", "wider", "add_skip", "concat_skip"])
def test_json_round_trip(op):
    g = default_graph() if op is None else morphed(op, seed=3)
    text = json.dumps(g.to_json())
    g2 = json_to_graph(text)
    assert g2.to_json() == g.to_json()
    assert json_to_graph(g.to_json()).to_json() == g.to_json()  # a dict works too
    assert g2.extract_descriptor() == g.extract_descriptor()


def test_json_to_graph_rejects_inconsistent_shapes_and_unknown_layers():
    j = default_graph().to_json()
    j["node_list"][5][1] = [16, 16, 99]
    with pytest.raises(ValueError, match="node 5"):
        json_to_graph(j)
    j = default_graph().to_json()
    j["layer_list"][0][1][0] = "StubMystery"
    with pytest.raises(ValueError, match="StubMystery"):
        json_to_graph(j)


def _children(n=6, seed=0):
    rng = np.random.default_rng(seed)
    g, out = default_graph(), []
    for i in range(n):
        g = g.copy()
        T.apply_random_operation(g, rng, ["deeper", "wider", "add_skip", "concat_skip", "deeper", "wider"][i % 6])
        out.append(g)
    return out


@pytest.mark.parametrize("shape,n_out", [((32, 32, 3), 10), ((28, 28, 1), 5)])
def test_produce_torch_model_forward_shape(shape, n_out):
    graphs = [CnnGenerator(n_out, shape).generate(3, 64)]
    rng = np.random.default_rng(1)
    for op in ["deeper", "wider", "add_skip", "concat_skip"]:
        g = graphs[-1].copy()
        T.apply_random_operation(g, rng, op)
        graphs.append(g)
    for g in graphs:
        model = json_to_graph(json.dumps(g.to_json())).produce_torch_model()
        x = torch.randn(2, shape[2], shape[0], shape[1])
        assert model(x).shape == (2, n_out)
        # size() counts BN running statistics too, as NNI's stubs do
        n_stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
        assert sum(p.numel() for p in model.parameters()) + n_stats == g.size()


@pytest.mark.parametrize("op,target", [("deeper", "conv"), ("deeper", "dense"), ("wider", "conv"),
                                       ("wider", "dense"), ("add_skip", None), ("concat_skip", None)])
def test_morphisms_preserve_the_function(op, target):
    """Wei et al. / Net2Net: with identity (deeper), replicated (wider) or zero-contribution
    (skip) initialisation the child computes the parent's function.  Eval mode (BN uses running
    statistics); parent weights are random and the BN statistics non-trivial."""
    torch.manual_seed(0)
    g = _children(2, seed=5)[-1]  # a parent that already has a morphism
    parent = g.produce_torch_model()
    with torch.no_grad():
        for m in parent.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    parent.eval()
    g.import_torch_weights(parent)
    rng = np.random.default_rng(7)
    child = g.copy()
    if op == "deeper":
        nodes = [v for v in T.deeper_candidates(child) if (len(child.node_list[v]) == 1) == (target == "dense")]
        T.to_deeper(child, nodes[0], kernel_size=3)
    elif op == "wider":
        from nniray.strategies.networkmorphism.layers import StubConv, StubDense
        kind = StubConv if target == "conv" else StubDense
        lids = [l for l in T.wider_candidates(child) if isinstance(child.layer_list[l], kind)]
        T.to_wider(child, lids[0], 7, rng)
    else:
        a, b = T.skip_candidates(child)[0]
        (T.to_add_skip if op == "add_skip" else T.to_concat_skip)(child, a, b, rng)
    assert child.size() > g.size()
    model = child.produce_torch_model().eval()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        diff = (model(x) - parent(x)).abs().max().item()
    assert diff <= TOL


def test_wider_is_refused_into_an_add():
    g = default_graph()
    rng = np.random.default_rng(0)
    a, b = T.skip_candidates(g)[0]
    T.to_add_skip(g, a, b, rng)
    conv_into_b = [l for l in range(g.n_layers) if type(g.layer_list[l]).__name__ == "StubConv2d"
                   and T._widen_closure(g, l) is None]
    assert conv_into_b, "the conv feeding the Add's main input must not be widenable"
    with pytest.raises(ValueError, match="cannot be widened"):
        T.to_wider(g, conv_into_b[0], 4, rng)


def _reward(graph) -> float:
    """Synthetic metric that prefers deeper conv stacks and penalises width and skips."""
    d = graph.extract_descriptor()
    n_conv = sum(1 for k, _ in d.layers if k == "conv")
    return n_conv - 0.5 * len(d.skip_connections) - sum(max(0, w - 64) for _, w in d.layers) / 64


def test_tuner_improves_its_choice_and_writes_best_model(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_LOG_DIRECTORY", str(tmp_path))
    tuner = create_algorithm("tuner", "NetworkMorphism", {"optimize_mode": "maximize", "seed": 0})
    tuner.update_search_space({})
    rewards = []
    for i in range(10):
        params = tuner.generate_parameters(i)
        assert isinstance(params, str)
        graph = json_to_graph(params)
        rewards.append(_reward(graph))
        tuner.receive_trial_result(i, params, {"default": rewards[-1]})
    assert rewards[0] == 3.0  # the default 3-conv network comes first
    assert np.mean(rewards[-4:]) >= rewards[0] + 2.0
    best = int(np.argmax(rewards))
    assert (tmp_path / "model_path" / "best_model.txt").read_text() == f"best model: {tuner.get_best_model_id()}"
    assert tuner.get_metric_value_by_id(tuner.get_best_model_id()) == rewards[best]
    assert tuner.load_best_model().to_json() == json_to_graph(
        (tmp_path / "model_path" / f"{tuner.get_best_model_id()}.json").read_text()).to_json()
    # every generated architecture is new
    keys = {json_to_graph((tmp_path / "model_path" / f"{m}.json").read_text()).extract_descriptor().key()
            for m in range(10)}
    assert len(keys) == 10


def test_minimize_mode_and_concurrent_requests_before_results(tmp_path):
    tuner = NetworkMorphismTuner(optimize_mode="minimize", path=str(tmp_path / "mp"), seed=1, verbose=False)
    ps = [tuner.generate_parameters(i) for i in range(3)]  # three trials in flight, no result yet
    assert len({json_to_graph(p).extract_descriptor().key() for p in ps}) == 3
    for i, p in enumerate(ps):
        tuner.receive_trial_result(i, p, float(i))
    assert tuner.get_best_model_id() == 0
    assert (tmp_path / "mp" / "best_model.txt").read_text() == "best model: 0"


def test_import_data_adds_trained_models(tmp_path):
    tuner = NetworkMorphismTuner(path=str(tmp_path / "mp"), seed=0, verbose=False)
    g1, g2 = default_graph(), morphed("deeper")
    tuner.import_data([{"parameter": json.dumps(g1.to_json()), "value": 0.5},
                       {"parameter": g2.to_json(), "value": {"default": 0.7}}])
    assert [h["metric_value"] for h in tuner.history] == [0.5, 0.7]
    assert tuner.get_best_model_id() == 1
    nxt = json_to_graph(tuner.generate_parameters(0))
    assert nxt.extract_descriptor() not in (g1.extract_descriptor(), g2.extract_descriptor())
    with pytest.raises(ValueError, match=r"import_data\[0\]"):
        tuner.import_data([{"value": 1.0}])


@pytest.mark.parametrize("args,field", [({"task": "nlp"}, "task"), ({"input_width": 0}, "input_width"),
                                        ({"t_min": 2.0}, "t_min"), ({"optimize_mode": "up"}, "optimize_mode"),
                                        ({"algorithm_name": "Random"}, "algorithm_name")])
def test_bad_class_args_name_the_field(args, field, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AlgorithmError, match=field):
        create_algorithm("tuner", "NetworkMorphism", args)


def test_unknown_parameter_id_is_an_error(tmp_path):
    tuner = NetworkMorphismTuner(path=str(tmp_path / "mp"), verbose=False)
    with pytest.raises(ValueError, match="parameter_id"):
        tuner.receive_trial_result(42, "{}", 0.5)
    assert os.path.isdir(tmp_path / "mp")
