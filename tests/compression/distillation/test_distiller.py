
import pytest
import torch
import torch.nn.functional as F

import nniray
from nniray.compression import TorchEvaluator
from nniray.compression.base import ConfigError
from nniray.compression.distillation import (Adaptive1dLayerwiseDistiller, DistilMethod, DynamicLayerwiseDistiller,
                                             distil_loss)

X = torch.randn(64, 6)
Y = torch.randint(0, 3, (64,))


class Student(torch.nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.fc1 = torch.nn.Linear(6, hidden)
        self.act = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(hidden, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _evaluator(model, steps_seen=None, lr=1e-2):
    def training_func(model, optimizers, training_step, lr_schedulers, max_steps, max_epochs):
        for step in range(max_steps or 1):
            loss = training_step((X, Y), model)
            if steps_seen is not None:
                steps_seen.append(loss.item())
            optimizers.zero_grad()
            loss.backward()
            optimizers.step()

    def training_step(batch, model):
        return F.cross_entropy(model(batch[0]), batch[1])

    return TorchEvaluator(training_func, nniray.trace(torch.optim.Adam)(model.parameters(), lr=lr), training_step)


def _predict(batch, teacher):
    return teacher(batch[0])


def test_distil_loss_formulas():
    s, t = torch.randn(4, 5), torch.randn(4, 5)
    assert torch.allclose(distil_loss(s, t, DistilMethod.MSE), ((s - t) ** 2).mean())
    ref = F.kl_div(F.log_softmax(s / 2, -1), F.softmax(t / 2, -1), reduction="batchmean") * 4
    assert torch.allclose(distil_loss(s, t, DistilMethod.KL), ref)


def test_loss_is_origin_plus_lambda_times_the_closest_link():
    torch.manual_seed(0)
    student, teacher = Student(), Student()
    d = DynamicLayerwiseDistiller(student, [{"op_names": ["fc1"], "link": ["fc1", "act"], "lambda": 0.5}],
                                  _evaluator(student), teacher, _predict, origin_loss_lambda=2.0)
    d._teacher_hooks()
    d._recording = True
    out = student(X)
    loss = F.cross_entropy(out, Y)
    total = d._loss_patch(loss, (X, Y))
    with torch.no_grad():
        h_t = teacher.fc1(X)
        h_s = student.fc1(X)
    expected = 2.0 * loss + 0.5 * min(F.mse_loss(h_s, h_t), F.mse_loss(h_s, torch.relu(h_t)))
    assert torch.allclose(total, expected)
    d._remove_teacher_hooks()


def test_distillation_pulls_the_student_to_the_teacher():
    torch.manual_seed(0)
    teacher, student = Student(), Student()
    with torch.no_grad():
        before = F.mse_loss(student(X), teacher(X)).item()
    d = DynamicLayerwiseDistiller(student, [{"op_names": ["fc2"], "apply_method": "mse"}], _evaluator(student),
                                  teacher, _predict, origin_loss_lambda=0.0)
    model = d.compress(max_steps=150)
    assert model is student
    d.unwrap_model()
    with torch.no_grad():
        after = F.mse_loss(student(X), teacher(X)).item()
    assert after < before / 10
    assert not d._teacher_handles  # the teacher is left without hooks


def test_adaptive_1d_maps_student_width_to_teacher_width():
    torch.manual_seed(0)
    teacher, student = Student(hidden=16), Student(hidden=8)
    d = Adaptive1dLayerwiseDistiller(student, [{"op_names": ["fc1"], "lambda": 1.0}], _evaluator(student), teacher,
                                     _predict, origin_loss_lambda=0.0)
    with pytest.raises(RuntimeError, match="track_forward"):
        d.compress(max_steps=1)
    d.track_forward(X[:2])
    lin = d.trans["fc1._output_->fc1"]
    assert (lin.in_features, lin.out_features) == (8, 16)
    w0 = lin.weight.detach().clone()
    seen = []
    d.evaluator = _evaluator(student, steps_seen=seen)
    d.compress(max_steps=100)
    assert not torch.equal(lin.weight, w0)  # trained by the user's optimizer
    assert seen[-1] < seen[0] / 3


def test_config_errors():
    student, teacher = Student(), torch.nn.Sequential(torch.nn.Linear(6, 3))
    ev = _evaluator(student)
    with pytest.raises(ConfigError, match="link='auto' needs the same module names"):
        DynamicLayerwiseDistiller(student, [{"op_names": ["fc1"]}], ev, teacher, _predict)
    with pytest.raises(ConfigError, match="'weight'"):
        DynamicLayerwiseDistiller(student, [{"op_names": ["fc1"], "target_names": ["weight"], "link": "0"}], ev,
                                  teacher, _predict)
    with pytest.raises(ConfigError, match="'mse' or 'kl'"):
        DynamicLayerwiseDistiller(student, [{"op_names": ["fc1"], "link": "0", "apply_method": "l1"}], ev, teacher,
                                  _predict)
    with pytest.raises(TypeError, match="teacher_predict"):
        DynamicLayerwiseDistiller(student, [{"op_names": ["fc1"], "link": "0"}], ev, teacher, None)
