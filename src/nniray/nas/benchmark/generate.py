"""Small NAS-benchmark databases with NNI's schema, for tests and offline use.

The real databases (GBs, hours to convert) cannot be fetched here.  These have the same tables
and shapes, filled with deterministic synthetic numbers (accuracies 0-100, a NaN loss stored
to check the None conversion, several seeds per config for ``reduction='mean'``): they exercise
the query API and the benchmark engine, they are not NAS-Bench results.
"""
from __future__ import annotations

import itertools
import random
from pathlib import Path

from . import nasbench101, nasbench201
from .db import DB_FILES, create, insert_config, insert_row

__all__ = ["make_small_databases"]

NB201_OPS = [nasbench201.NONE, nasbench201.SKIP_CONNECT, nasbench201.CONV_1X1, nasbench201.CONV_3X3,
             nasbench201.AVG_POOL_3X3]
NB201_EDGES = ["0_1", "0_2", "1_2", "0_3", "1_3", "2_3"]


def _nb201(conn, rng: random.Random, n_archs: int) -> None:
    all_archs = list(itertools.product(NB201_OPS, repeat=len(NB201_EDGES)))
    for ops in rng.sample(all_archs, n_archs):
        arch = dict(zip(NB201_EDGES, ops))
        quality = sum(NB201_OPS.index(o) for o in ops) / (4 * 6)
        for dataset in ("cifar10-valid", "cifar100"):
            for epochs in (12, 200):
                cid = insert_config(conn, "nb201", arch=arch, num_epochs=epochs, num_channels=16, num_cells=5,
                                    dataset=dataset)
                for seed in (777, 888):
                    acc = 40 + 50 * quality + rng.uniform(-2, 2) + (5 if epochs == 200 else 0)
                    tid = insert_row(conn, "nb201trialstats", config_id=cid, seed=seed, train_acc=min(acc + 5, 100),
                                     valid_acc=acc, test_acc=acc - 1, ori_test_acc=acc - 1, train_loss=1 - quality,
                                     valid_loss=float("nan") if seed == 888 else 1.1 - quality,
                                     test_loss=1.2 - quality, ori_test_loss=1.2 - quality, parameters=0.1 + quality,
                                     latency=0.01, flops=10 + 100 * quality, training_time=100.0 * epochs,
                                     valid_evaluation_time=1.0, test_evaluation_time=1.0, ori_test_evaluation_time=1.0)
                    for e in range(epochs if epochs < 20 else 3):
                        insert_row(conn, "nb201intermediatestats", trial_id=tid, current_epoch=e + 1,
                                   train_acc=acc * (e + 1) / epochs, valid_acc=acc * (e + 1) / epochs,
                                   test_acc=acc * (e + 1) / epochs, ori_test_acc=acc * (e + 1) / epochs,
                                   train_loss=1.0, valid_loss=1.0, test_loss=1.0, ori_test_loss=1.0)


def _nb101(conn, rng: random.Random, n_archs: int) -> None:
    ops = [nasbench101.CONV3X3_BN_RELU, nasbench101.CONV1X1_BN_RELU, nasbench101.MAXPOOL3X3]
    for _ in range(n_archs):
        vertices = rng.randint(3, 7)
        arch = {f"op{i}": rng.choice(ops) for i in range(1, vertices - 1)}
        for i in range(1, vertices):
            arch[f"input{i}"] = sorted(rng.sample(range(i), rng.randint(1, min(i, 2))))
        h = nasbench101.hash_module(arch, vertices)
        for epochs in (4, 108):
            cid = insert_config(conn, "nb101", arch=arch, num_vertices=vertices, hash=h, num_epochs=epochs)
            for _ in range(3):  # each config trained three times
                acc = 70 + 20 * rng.random()
                tid = insert_row(conn, "nb101trialstats", config_id=cid, train_acc=acc + 5, valid_acc=acc,
                                 test_acc=acc - 0.5, parameters=1.0 + vertices, training_time=10.0 * epochs)
                for e in (epochs // 2, epochs):
                    insert_row(conn, "nb101intermediatestats", trial_id=tid, current_epoch=e, train_acc=acc,
                               valid_acc=acc, test_acc=acc, training_time=10.0 * e)


def _nds(conn, rng: random.Random) -> None:
    for family, proposer in (("residual_basic", "resnet"), ("vanilla", "vanilla"), ("nas_cell", "amoeba")):
        for i in range(4):
            spec = {"ds": [1, 2 + i, 2, 2], "ss": [1, 1, 2, 2], "ws": [16, 24, 24, 40]}
            cell = {"normal_0_op_x": "conv_3x3", "normal_concat": [2, 3]} if family == "nas_cell" else {}
            cid = insert_config(conn, "nds", model_family=family, model_spec=spec, cell_spec=cell, dataset="cifar10",
                                generator="random", proposer=proposer, base_lr=0.1, weight_decay=5e-4, num_epochs=100)
            acc = 85 + 10 * rng.random()
            tid = insert_row(conn, "ndstrialstats", config_id=cid, seed=i, final_train_acc=acc + 3,
                             final_train_loss=0.1, final_test_acc=acc, best_train_acc=acc + 4, best_train_loss=0.09,
                             best_test_acc=acc + 0.5, parameters=0.5, flops=50.0, iter_time=0.05)
            for e in range(3):
                insert_row(conn, "ndsintermediatestats", trial_id=tid, current_epoch=e + 1, train_loss=1.0 / (e + 1),
                           train_acc=acc * (e + 1) / 3, test_acc=acc * (e + 1) / 3)


def _nlp(conn, rng: random.Random) -> None:
    for i in range(3):
        arch = {"h_new_0_input_0": "node_3", "node_3_op": "elementwise_sum", "node_3_input_0": "x",
                "node_3_input_1": f"h_prev_{i}"}
        for dataset in ("ptb", "wikitext-2"):
            cid = insert_config(conn, "nlp", arch=arch, dataset=dataset)
            tid = insert_row(conn, "nlptrialstats", config_id=cid, train_loss=4.1 + i, val_loss=4.7 + i,
                             test_loss=4.68 + i, training_time=177.0)
            for e in range(46, 50):
                insert_row(conn, "nlpintermediatestats", trial_id=tid, current_epoch=e, train_loss=6.4, val_loss=6.3,
                           test_loss=6.2, training_time=146.0 + e)


def make_small_databases(directory: str | Path, seed: int = 0, nb201_archs: int = 60, nb101_archs: int = 30) -> Path:
    """Write nasbench101.db, nasbench201.db, nds.db and nlp.db into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for prefix, fill in (("nb201", lambda c: _nb201(c, rng, nb201_archs)), ("nb101", lambda c: _nb101(c, rng, nb101_archs)),
                         ("nds", lambda c: _nds(c, rng)), ("nlp", lambda c: _nlp(c, rng))):
        path = directory / f"{DB_FILES[prefix]}.db"
        path.unlink(missing_ok=True)
        conn = create(path, prefix)
        fill(conn)
        conn.commit()
        conn.close()
    return directory


if __name__ == "__main__":
    import sys
    print(make_small_databases(sys.argv[1] if len(sys.argv) > 1 else "."))
