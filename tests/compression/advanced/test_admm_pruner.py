import pytest
import torch

from adv_helpers import ConvNet, make_evaluator
from nniray.compression.pruning import ADMMPruner
from nniray.compression.pruning._advanced.admm import project, projection_mask


def test_final_z_is_projection_of_w_plus_u_and_masks_are_its_support():
    torch.manual_seed(0)
    model = ConvNet()
    cfg = [{"op_names": ["conv1"], "sparse_ratio": 0.5, "rho": 0.1}, {"op_names": ["conv2"], "sparse_ratio": 0.75}]
    pruner = ADMMPruner(model, cfg, make_evaluator(model), iterations=3, training_steps=2)
    assert pruner.rhos == {"conv1": 0.1, "conv2": 1e-4}
    _, masks = pruner.compress()
    state = pruner.admm_state
    for name, ratio in (("conv1", 0.5), ("conv2", 0.75)):
        z, u = state.Z[name], state.U[name]
        v = z + u    # U_new = U_old + W - Z  =>  W + U_old = Z + U_new: the vector that was projected
        assert torch.allclose(z, project(v, ratio, "fine"), atol=1e-6)
        assert torch.equal(masks[name]["weight"], projection_mask(v, ratio, "fine"))
        n = masks[name]["weight"].numel()
        assert int(masks[name]["weight"].sum()) == n - int(ratio * n)


def test_penalty_pulls_weights_towards_z():
    """Training with a large rho drives the weights the projection removes towards zero (the exact
    penalty gradient is checked in test_cores)."""
    def pruned_mass(rho):
        torch.manual_seed(1)
        model = ConvNet()
        pruner = ADMMPruner(model, [{"op_names": ["conv2"], "sparse_ratio": 0.75, "rho": rho}],
                            make_evaluator(model, lr=0.05), iterations=3, training_steps=4)
        _, masks = pruner.compress()
        w = pruner._weights["conv2"].original.detach()
        return float((w * (1 - masks["conv2"]["weight"])).abs().sum())
    assert pruned_mass(5.0) < 0.7 * pruned_mass(1e-8)


def test_coarse_grained_prunes_whole_filters():
    torch.manual_seed(0)
    model = ConvNet()
    pruner = ADMMPruner(model, [{"op_names": ["conv2"], "sparse_ratio": 0.5}], make_evaluator(model), iterations=2,
                        training_steps=1, granularity="coarse-grained")
    _, masks = pruner.compress()
    rows = masks["conv2"]["weight"].reshape(16, -1)
    assert set(rows.sum(1).tolist()) <= {0.0, float(rows.shape[1])}
    assert int((rows.sum(1) == 0).sum()) == 8
    assert masks["conv2"]["bias"].tolist() == (rows.sum(1) > 0).float().tolist()


def test_bad_arguments():
    model = ConvNet()
    ev = make_evaluator(model)
    with pytest.raises(ValueError, match="exactly one of training_steps and training_epochs"):
        ADMMPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}], ev, iterations=2)
    with pytest.raises(ValueError, match="rho"):
        ADMMPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5, "rho": -1}], ev, 2, training_steps=1)
    with pytest.raises(ValueError, match="granularity"):
        ADMMPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}], ev, 2, training_steps=1, granularity="x")


def test_global_group_projection_meets_the_group_total():
    torch.manual_seed(0)
    model = ConvNet()
    pruner = ADMMPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5, "global_group_id": 1}],
                        make_evaluator(model), iterations=2, training_steps=1)
    _, masks = pruner.compress()
    pruned = sum(int((masks[k]["weight"] == 0).sum()) for k in ("conv1", "conv2"))
    assert pruned == int(0.5 * (72 + 1152))
