import pytest
import torch
from torch import nn

from adv_helpers import make_evaluator
from nniray.compression.pruning import TransformerHeadPruner

DIM, HEADS = 8, 4           # head_hidden_dim 2


class MHA(nn.Module):
    """Multi-head self-attention with separate q/k/v/o Linear modules (the layout the pruner needs)."""

    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM), nn.Linear(DIM, DIM)
        self.out_proj = nn.Linear(DIM, DIM)

    def forward(self, x):
        b, t, _ = x.shape
        split = lambda y: y.reshape(b, t, HEADS, DIM // HEADS).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        att = torch.softmax(q @ k.transpose(-1, -2) / (DIM // HEADS) ** 0.5, dim=-1)
        return self.out_proj((att @ v).transpose(1, 2).reshape(b, t, DIM))


class TinyTransformer(nn.Module):
    def __init__(self, layers=2):
        super().__init__()
        self.blocks = nn.ModuleList([MHA() for _ in range(layers)])
        self.head = nn.Linear(DIM, 3)

    def forward(self, x):
        for blk in self.blocks:
            x = x + blk(x)
        return self.head(x.mean(1))


def set_head_norms(mha, per_head):
    """Every weight entry of head h in q/k/v is per_head[h]: the l1 score of head h is
    per_head[h] * 2 rows * 8 columns."""
    with torch.no_grad():
        for m in (mha.q_proj, mha.k_proj, mha.v_proj):
            m.weight.copy_(torch.tensor(per_head).repeat_interleave(2)[:, None].expand(DIM, DIM))


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 5, DIM, generator=g)
    return x, torch.randint(0, 3, (16,), generator=g)


def cfg(ratio=0.5, names=None):
    return [{"op_types": ["Linear"], "op_names_re": [r"blocks\..*"], "sparse_ratio": ratio}]


def pruned_heads(masks, block):
    rows = masks[f"blocks.{block}.q_proj"]["weight"][:, 0].reshape(HEADS, 2)[:, 0]
    return [h for h in range(HEADS) if rows[h] == 0]


def test_lowest_weight_norm_heads_are_masked_across_qkvo():
    model = TinyTransformer()
    set_head_norms(model.blocks[0], [0.3, 0.1, 0.4, 0.2])
    set_head_norms(model.blocks[1], [0.5, 0.6, 0.05, 0.7])
    pruner = TransformerHeadPruner(model, cfg(0.5), head_hidden_dim=2)
    assert pruner.attention_name_groups == [[f"blocks.{i}.q_proj", f"blocks.{i}.k_proj", f"blocks.{i}.v_proj",
                                             f"blocks.{i}.out_proj"] for i in range(2)]
    _, masks = pruner.compress()
    assert pruned_heads(masks, 0) == [1, 3] and pruned_heads(masks, 1) == [0, 2]
    keep_rows = torch.tensor([1, 1, 0, 0, 1, 1, 0, 0.0])     # block 0: heads 1 and 3 -> rows 2,3,6,7
    for name in ("q_proj", "k_proj", "v_proj"):
        assert torch.equal(masks[f"blocks.0.{name}"]["weight"], keep_rows[:, None].expand(DIM, DIM))
        assert torch.equal(masks[f"blocks.0.{name}"]["bias"], keep_rows)
    assert torch.equal(masks["blocks.0.out_proj"]["weight"], keep_rows[None, :].expand(DIM, DIM))
    # the masked model runs and the pruned heads contribute nothing to the output projection's input
    model(torch.randn(2, 5, DIM))


def test_global_sort_ranks_heads_across_layers():
    model = TinyTransformer()
    set_head_norms(model.blocks[0], [0.3, 0.1, 0.4, 0.2])
    set_head_norms(model.blocks[1], [0.5, 0.6, 0.05, 0.7])
    _, masks = TransformerHeadPruner(model, cfg(0.5), head_hidden_dim=2, global_sort=True).compress()
    # the 4 lowest of all 8: 0.05 (b1h2), 0.1 (b0h1), 0.2 (b0h3), 0.3 (b0h0)
    assert pruned_heads(masks, 0) == [0, 1, 3] and pruned_heads(masks, 1) == [2]


def l1_l2_disagree_model():
    """Head 0 has l1 6 but l2 4.24 (one big entry per row); head 1 has l1 8 but l2 2.0 (spread)."""
    model = TinyTransformer(layers=1)
    with torch.no_grad():
        w = torch.zeros(DIM, DIM)
        w[0:2, 0] = 3.0
        w[2:4, :] = 0.5
        w[4:6, :] = 1.0          # l1 16, l2 4
        w[6:8, :] = 2.0          # l1 32, l2 8
        for m in (model.blocks[0].q_proj, model.blocks[0].k_proj, model.blocks[0].v_proj):
            m.weight.copy_(w)
    return model


def test_l1_and_l2_weight_criteria_with_explicit_groups():
    groups = [["blocks.0.v_proj", "blocks.0.q_proj", "blocks.0.k_proj", "blocks.0.out_proj"]]
    _, m1 = TransformerHeadPruner(l1_l2_disagree_model(), cfg(0.25), head_hidden_dim=2, attention_name_groups=groups,
                                  ranking_criterion="l1_weight").compress()
    assert pruned_heads(m1, 0) == [0]
    _, m2 = TransformerHeadPruner(l1_l2_disagree_model(), cfg(0.25), head_hidden_dim=2, attention_name_groups=groups,
                                  ranking_criterion="l2_weight").compress()
    assert pruned_heads(m2, 0) == [1]


def test_activation_and_taylor_criteria_run_through_the_evaluator():
    torch.manual_seed(0)
    model = TinyTransformer()
    ev = make_evaluator(model, data=data(), evaluating_func=lambda m: float(m(data()[0]).sum().detach()))
    pruner = TransformerHeadPruner(model, cfg(0.5), ev, head_hidden_dim=2, ranking_criterion="l1_activation")
    scores = None
    orig = pruner.head_scores

    def spy():
        nonlocal scores
        scores = orig()
        return scores
    pruner.head_scores = spy
    _, masks = pruner.compress()
    for b in range(2):
        expected = sorted(torch.sort(scores[b], stable=True).indices[:2].tolist())
        assert pruned_heads(masks, b) == expected
    model = TinyTransformer()
    pruner = TransformerHeadPruner(model, cfg(0.25), make_evaluator(model, data=data()), head_hidden_dim=2,
                                   ranking_criterion="taylorfo", training_steps=2)
    _, masks = pruner.compress()
    assert len(pruned_heads(masks, 0)) == 1 and len(pruned_heads(masks, 1)) == 1


def test_iterative_pruning_keeps_pruned_heads():
    torch.manual_seed(0)
    model = TinyTransformer()
    pruner = TransformerHeadPruner(model, cfg(0.5), make_evaluator(model, data=data()), head_hidden_dim=2,
                                   num_iterations=2, epochs_per_iteration=1)
    _, masks = pruner.compress()
    assert len(pruned_heads(masks, 0)) == 2 and len(pruned_heads(masks, 1)) == 2


def test_validation_errors():
    model = TinyTransformer()
    with pytest.raises(ValueError, match="head_hidden_dim 3 does not divide"):
        TransformerHeadPruner(model, cfg(), head_hidden_dim=3)
    model = TinyTransformer()
    with pytest.raises(ValueError, match="one sparse_ratio"):
        TransformerHeadPruner(model, [{"op_names_re": [r"blocks\.0\.(q|k|v)_proj"], "sparse_ratio": 0.5},
                                      {"op_names": ["blocks.0.out_proj"], "sparse_ratio": 0.25}], head_hidden_dim=2)
    model = TinyTransformer()
    with pytest.raises(ValueError, match="in no attention group"):
        TransformerHeadPruner(model, [{"op_types": ["Linear"], "sparse_ratio": 0.5}], head_hidden_dim=2)
    model = TinyTransformer()
    with pytest.raises(ValueError, match="global_sort"):
        TransformerHeadPruner(model, [{"op_names_re": [r"blocks\.0\..*"], "sparse_ratio": 0.5},
                                      {"op_names_re": [r"blocks\.1\..*"], "sparse_ratio": 0.25}], head_hidden_dim=2,
                              global_sort=True)
    model = TinyTransformer()
    with pytest.raises(ValueError, match="needs an evaluator"):
        TransformerHeadPruner(model, cfg(), head_hidden_dim=2, ranking_criterion="taylorfo")


@pytest.mark.slow
def test_huggingface_bert_groups_found_and_heads_masked():
    """A tiny randomly initialised BertModel (no download): groups by HF naming, masks by head."""
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    cfg_ = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32,
                      max_position_embeddings=16)
    model = BertModel(cfg_)
    ids = torch.randint(0, 50, (2, 8))
    ev = make_evaluator(model, data=(ids, torch.zeros(2, dtype=torch.long)),
                        evaluating_func=lambda m: float(m(ids).last_hidden_state.sum().detach()))
    pruner = TransformerHeadPruner(model, [{"op_names_re": [r"encoder\.layer\.\d+\.attention\..*"],
                                            "op_types": ["Linear"], "sparse_ratio": 0.5}], ev, head_hidden_dim=4,
                                   ranking_criterion="l1_activation")
    assert pruner.attention_name_groups[0] == ["encoder.layer.0.attention.self.query",
                                               "encoder.layer.0.attention.self.key",
                                               "encoder.layer.0.attention.self.value",
                                               "encoder.layer.0.attention.output.dense"]
    _, masks = pruner.compress()
    for layer in range(2):
        q = masks[f"encoder.layer.{layer}.attention.self.query"]["weight"][:, 0].reshape(4, 4)
        o = masks[f"encoder.layer.{layer}.attention.output.dense"]["weight"][0].reshape(4, 4)
        assert int((q[:, 0] == 0).sum()) == 2 and torch.equal(q, o)
    assert model(ids).last_hidden_state.shape == (2, 8, 16)
