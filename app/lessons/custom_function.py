"""Custom autograd Function: write a ReLU with its own forward and backward.

A torch.autograd.Function subclass is a new node type for the autograd graph:
forward computes the output, backward turns the gradient of the output into the
gradient of the input.
The explorer provides the config values (N, D_in, H, D_out, learning_rate,
iterations, device, seed, zero_grad) and the list `losses`.
"""

import torch


class MyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        # [forward] Runs during the forward pass, with autograd recording off
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        # [backward] Runs when the backward pass reaches this node
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


torch.manual_seed(seed)

# Random input and output data
x = torch.randn(N, D_in, device=device)
y = torch.randn(N, D_out, device=device)

# Randomly initialised weights that autograd tracks
w1 = torch.randn(D_in, H, device=device, requires_grad=True)
w2 = torch.randn(H, D_out, device=device, requires_grad=True)

for t in range(iterations):
    # [forward] Forward pass, with our Function in place of clamp
    relu = MyReLU.apply
    y_pred = relu(x.mm(w1)).mm(w2)

    # [loss] Sum of squared errors
    loss = (y_pred - y).pow(2).sum()
    losses.append(loss.item())

    # [backward] The engine calls MyReLU.backward when it reaches our node
    loss.backward()

    # [update] Gradient descent step, outside the graph
    with torch.no_grad():
        w1 -= learning_rate * w1.grad
        w2 -= learning_rate * w2.grad

    # [zero_grad] Gradients add up in .grad until they are zeroed
    if zero_grad:
        w1.grad.zero_()
        w2.grad.zero_()
