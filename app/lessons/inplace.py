"""In place: version counters, a safe in-place Function, and an unsafe in-place edit.

Part 1 trains with a ReLU that overwrites its input (a custom Function that
tells autograd so with ctx.mark_dirty). Part 2 modifies a tensor that autograd
saved for backward; the backward pass then fails with PyTorch's own error, and
that error is how this program ends.
The explorer provides the config values (N, D_in, H, D_out, learning_rate,
iterations, device, seed, zero_grad) and the list `losses`.
"""

import torch


class MyReLU_(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        # [forward] Overwrite the input instead of allocating an output
        ctx.mark_dirty(input)
        input.clamp_(min=0)
        ctx.save_for_backward(input)
        return input

    @staticmethod
    def backward(ctx, grad_output):
        # [backward] The saved output tells where the input was positive
        (output,) = ctx.saved_tensors
        return grad_output * (output > 0)


torch.manual_seed(seed)

# Random input and output data
x = torch.randn(N, D_in, device=device)
y = torch.randn(N, D_out, device=device)

# Randomly initialised weights that autograd tracks
w1 = torch.randn(D_in, H, device=device, requires_grad=True)
w2 = torch.randn(H, D_out, device=device, requires_grad=True)

# Part 1: training with an in-place ReLU
for t in range(iterations):
    # [forward] h is clamped in place: same tensor, higher version
    h = x.mm(w1)
    h_relu = MyReLU_.apply(h)
    y_pred = h_relu.mm(w2)

    # [loss] Sum of squared errors
    loss = (y_pred - y).pow(2).sum()
    losses.append(loss.item())

    # [backward] Gradients through the in-place ReLU
    loss.backward()

    # [update] Gradient descent step, in place on the leaves, outside the graph
    with torch.no_grad():
        w1 -= learning_rate * w1.grad
        w2 -= learning_rate * w2.grad

    # [zero_grad] Gradients add up in .grad until they are zeroed
    if zero_grad:
        w1.grad.zero_()
        w2.grad.zero_()

# [forward] Part 2: modify a tensor that autograd saved for backward
a = x.mm(w1)
b = a.sigmoid()
version_before = b._version
b.mul_(2)
version_after = b._version

# [backward] Backward needs the saved b, which has changed since: autograd refuses
b.sum().backward()
