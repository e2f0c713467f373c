"""Tensors: the same two-layer network with torch tensors, backward still by hand.

A tensor is NumPy's array that can live on a GPU; the maths is unchanged.
The explorer provides the config values (N, D_in, H, D_out, learning_rate,
iterations, device, seed) and the list `losses`.
"""

import torch

torch.manual_seed(seed)

# Random input and output data
x = torch.randn(N, D_in, device=device)
y = torch.randn(N, D_out, device=device)

# Randomly initialised weights
w1 = torch.randn(D_in, H, device=device)
w2 = torch.randn(H, D_out, device=device)

for t in range(iterations):
    # [forward] Forward pass: compute the predicted y
    h = x.mm(w1)
    h_relu = h.clamp(min=0)
    y_pred = h_relu.mm(w2)

    # [loss] Sum of squared errors
    loss = (y_pred - y).pow(2).sum()
    losses.append(loss.item())

    # [backward] Backprop by hand: the chain rule, from the loss back to w1 and w2
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h_relu.t().mm(grad_y_pred)
    grad_h_relu = grad_y_pred.mm(w2.t())
    grad_h = grad_h_relu.clone()
    grad_h[h < 0] = 0
    grad_w1 = x.t().mm(grad_h)

    # [update] Gradient descent step
    w1 -= learning_rate * grad_w1
    w2 -= learning_rate * grad_w2
