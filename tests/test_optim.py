"""LeanAdam and LeanSGD take exactly torch.optim's steps."""
import pytest
import torch

from aecore.optim import LeanAdam, LeanSGD


def test_lean_adam_is_bitwise_torch_adam():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.GELU(), torch.nn.Linear(4, 6))
    b = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.GELU(), torch.nn.Linear(4, 6))
    b.load_state_dict(a.state_dict())
    ours, ref = LeanAdam(a.parameters(), lr=1e-2), torch.optim.Adam(b.parameters(), lr=1e-2, fused=True)
    for step in range(5):
        x = torch.randn(8, 6)
        for model, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            ((model(x) - x) ** 2).mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.isfinite(pa).all() and torch.equal(pa, pb)
    assert not torch.equal(a[0].weight, torch.nn.Linear(6, 4).weight)


def test_lean_adam_skips_parameters_without_gradient_like_torch_adam():
    torch.manual_seed(1)
    a = torch.nn.ModuleList([torch.nn.Linear(5, 5), torch.nn.Linear(5, 5)])
    b = torch.nn.ModuleList([torch.nn.Linear(5, 5), torch.nn.Linear(5, 5)])
    b.load_state_dict(a.state_dict())
    ours, ref = LeanAdam(a.parameters(), lr=1e-2), torch.optim.Adam(b.parameters(), lr=1e-2, fused=True)
    for step in range(6):
        x = torch.randn(4, 5)
        for model, opt in ((a, ours), (b, ref)):
            opt.zero_grad(set_to_none=True)
            out = model[0](x) if step % 3 else model[1](model[0](x))  # the second layer idles two steps in three
            (out ** 2).mean().backward()
            opt.step()
    assert [float(s) for s in ours.steps] == [6.0, 6.0, 2.0, 2.0]
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_lean_sgd_is_bitwise_torch_sgd(momentum):
    torch.manual_seed(2)
    a = torch.nn.ModuleList([torch.nn.Linear(5, 5), torch.nn.Linear(5, 5)])
    b = torch.nn.ModuleList([torch.nn.Linear(5, 5), torch.nn.Linear(5, 5)])
    b.load_state_dict(a.state_dict())
    ours, ref = LeanSGD(a.parameters(), lr=0.05, momentum=momentum), torch.optim.SGD(b.parameters(), lr=0.05,
                                                                                    momentum=momentum, fused=True)
    for step in range(7):
        x = torch.randn(4, 5)
        if step == 4:
            ours.lr = ref.param_groups[0]["lr"] = 0.02  # the training loop's schedule sets it so
        for model, opt in ((a, ours), (b, ref)):
            opt.zero_grad(set_to_none=True)
            out = model[0](x) if step % 3 else model[1](model[0](x))  # the second layer idles two steps in three
            (out ** 2).mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.isfinite(pa).all() and torch.equal(pa, pb)
    assert not torch.equal(a[1].weight, torch.nn.Linear(5, 5).weight)


def test_lean_sgd_starts_a_late_parameters_momentum_from_its_gradient_like_torch_sgd():
    """A parameter whose first gradient comes after the others' (torch's fused SGD raises there; its default does
    this)."""
    torch.manual_seed(3)
    a = torch.nn.ModuleList([torch.nn.Linear(5, 5), torch.nn.Linear(5, 5)])
    b = torch.nn.ModuleList([torch.nn.Linear(5, 5), torch.nn.Linear(5, 5)])
    b.load_state_dict(a.state_dict())
    ours, ref = LeanSGD(a.parameters(), lr=0.05, momentum=0.9), torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
    for step in range(5):
        x = torch.randn(4, 5)
        for model, opt in ((a, ours), (b, ref)):
            opt.zero_grad(set_to_none=True)
            out = model[1](model[0](x)) if step % 3 else model[0](x)  # the second layer's first gradient at step 1
            (out ** 2).mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert all(buf is not None for buf in ours.momentum_buffers)
