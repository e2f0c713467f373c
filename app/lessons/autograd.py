"""Autograd: let PyTorch build the graph and compute the gradients.

Weights created with requires_grad=True are recorded in a graph as the forward
pass runs; loss.backward() walks that graph backwards and fills in w1.grad and w2.grad.
The explorer provides the config values (N, D_in, H, D_out, learning_rate,
iterations, device, seed, zero_grad) and the list `losses`.
"""

import torch

torch.manual_seed(seed)

# Random input and output data: no gradients needed for these
x = torch.randn(N, D_in, device=device)
y = torch.randn(N, D_out, device=device)

# Randomly initialised weights that autograd tracks
w1 = torch.randn(D_in, H, device=device, requires_grad=True)
w2 = torch.randn(H, D_out, device=device, requires_grad=True)

for t in range(iterations):
    # [forward] Forward pass: the same operations, now recorded in a graph
    y_pred = x.mm(w1).clamp(min=0).mm(w2)

    # [loss] Sum of squared errors: a scalar tensor at the root of the graph
    loss = (y_pred - y).pow(2).sum()
    losses.append(loss.item())

    # [backward] Autograd computes d loss / d w1 and d loss / d w2
    loss.backward()

    # [update] Gradient descent step, outside the graph
    with torch.no_grad():
        w1 -= learning_rate * w1.grad
        w2 -= learning_rate * w2.grad

    # [zero_grad] Gradients add up in .grad until they are zeroed
    if zero_grad:
        w1.grad.zero_()
        w2.grad.zero_()
