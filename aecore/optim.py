"""Adam and SGD with less per-step overhead, for the small batches this tool trains with on CPUs.

``torch.optim.Adam(fused=True)`` spends ~0.1 ms of Python per step (hooks, grouping tensors by device and dtype)
around one fused kernel: about 10% of a batch-32 step of the seed recipe on a 2-core CPU. :class:`LeanAdam` calls
the same kernel directly, so its updates are bitwise those of ``torch.optim.Adam(fused=True)`` (a test checks).
Devices without the fused kernel get ``torch.optim.Adam``.

They also keep torch._dynamo unimported: every ``torch.optim`` optimiser imports it at its construction and first
step (``torch._disable_dynamo``), 1.3-2.0 s of Python that the first training, classifier or fine-tuning of a server
waited for.
"""
from __future__ import annotations

from typing import Iterable

import torch


class LeanAdam:
    """Adam (Kingma & Ba 2015) over a fixed list of parameters, no weight decay, no param groups."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        # per-parameter step counts as views of one tensor, so the usual step advances them all with one add
        # (``_foreach_add_`` on CPU costs ~13 us, a tenth of the update)
        device = self.params[0].device if self.params else "cpu"
        self._counts = torch.zeros(len(self.params), dtype=torch.float32, device=device)
        self.steps = list(self._counts.unbind())

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):
            self._step_some(grads)
            return
        self._counts.add_(1)  # the kernel reads the step counts, it does not advance them
        self._update(self.params, grads, self.exp_avg, self.exp_avg_sq, self.steps)

    def _step_some(self, grads: list[torch.Tensor | None]) -> None:
        """Parameters without a gradient this step keep their state and count, as in torch.optim.Adam."""
        live = [i for i, g in enumerate(grads) if g is not None]
        if not live:
            return
        self._counts[live] += 1
        pick = lambda xs: [xs[i] for i in live]  # noqa: E731
        self._update(pick(self.params), pick(grads), pick(self.exp_avg), pick(self.exp_avg_sq), pick(self.steps))

    def _update(self, params, grads, exp_avg, exp_avg_sq, steps) -> None:
        with torch.no_grad():
            torch._fused_adam_(params, grads, exp_avg, exp_avg_sq, [], steps, lr=self.lr, beta1=self.betas[0],
                               beta2=self.betas[1], weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False)


class LeanSGD:
    """SGD with momentum (no dampening, no Nesterov, no weight decay) through the fused kernel: bitwise
    ``torch.optim.SGD(fused=True)`` (a test checks)."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.momentum = lr, momentum
        self.momentum_buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        bufs = [] if self.momentum == 0 else [self.momentum_buffers[i] for i in live]
        first = bool(bufs) and all(b is None for b in bufs)  # as torch.optim: the buffers start as the gradients
        if first:
            bufs = [torch.empty_like(self.params[i].grad) for i in live]
            for i, b in zip(live, bufs):
                self.momentum_buffers[i] = b
        elif any(b is None for b in bufs):  # a parameter's first gradient after the others' (rare): torch.optim's way
            return self._step_foreach(live)
        with torch.no_grad():
            torch._fused_sgd_([self.params[i] for i in live], [self.params[i].grad for i in live], bufs,
                              weight_decay=0.0, momentum=self.momentum, lr=self.lr, dampening=0.0, nesterov=False,
                              maximize=False, is_first_step=first, grad_scale=None, found_inf=None)

    def _step_foreach(self, live: list[int]) -> None:
        with torch.no_grad():
            for i in live:
                p, buf = self.params[i], self.momentum_buffers[i]
                if buf is None:
                    buf = self.momentum_buffers[i] = p.grad.detach().clone()
                else:
                    buf.mul_(self.momentum).add_(p.grad)
                p.add_(buf, alpha=-self.lr)


def sgd(params: Iterable[torch.nn.Parameter], lr: float, device: torch.device, momentum: float = 0.0):
    """SGD with momentum, through the fused kernel where the device has one."""
    if device.type in ("cpu", "cuda") and hasattr(torch, "_fused_sgd_"):
        return LeanSGD(params, lr=lr, momentum=momentum)
    return torch.optim.SGD(params, lr=lr, momentum=momentum)


def adam(params: Iterable[torch.nn.Parameter], lr: float, device: torch.device, betas=(0.9, 0.999)):
    """The fastest exact Adam for ``device``."""
    if device.type in ("cpu", "cuda") and hasattr(torch, "_fused_adam_"):
        return LeanAdam(params, lr=lr, betas=betas)
    return torch.optim.Adam(params, lr=lr, betas=betas)
