"""NumPy: a two-layer network with the forward and the backward pass written by hand.

Nothing here knows about gradients: every derivative is a line of the chain rule.
At the end, autograd checks the hand-written gradients on the same float64 arrays.
The explorer provides the config values (N, D_in, H, D_out, learning_rate,
iterations, device, seed) and the list `losses`.
"""

import numpy as np
import torch

rng = np.random.default_rng(seed)

# Random input and output data
x = rng.standard_normal((N, D_in))
y = rng.standard_normal((N, D_out))

# Randomly initialised weights
w1 = rng.standard_normal((D_in, H))
w2 = rng.standard_normal((H, D_out))

for t in range(iterations):
    # [forward] Forward pass: compute the predicted y
    h = x.dot(w1)
    h_relu = np.maximum(h, 0)
    y_pred = h_relu.dot(w2)

    # [loss] Sum of squared errors
    loss = np.square(y_pred - y).sum()
    losses.append(float(loss))

    # [backward] Backprop by hand: the chain rule, from the loss back to w1 and w2
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h_relu.T.dot(grad_y_pred)
    grad_h_relu = grad_y_pred.dot(w2.T)
    grad_h = grad_h_relu.copy()
    grad_h[h < 0] = 0
    grad_w1 = x.T.dot(grad_h)

    # [update] Gradient descent step
    w1 -= learning_rate * grad_w1
    w2 -= learning_rate * grad_w2

# [backward] Check: the hand-written gradients against autograd's, at the final weights
h_final = x.dot(w1)
grad_out = 2.0 * (np.maximum(h_final, 0).dot(w2) - y)
hand_grad_w2 = np.maximum(h_final, 0).T.dot(grad_out)
hand_grad_w1 = x.T.dot(grad_out.dot(w2.T) * (h_final >= 0))

x_t = torch.tensor(x, device=device)
y_t = torch.tensor(y, device=device)
w1_t = torch.tensor(w1, device=device, requires_grad=True)
w2_t = torch.tensor(w2, device=device, requires_grad=True)
loss_t = (x_t.mm(w1_t).clamp(min=0).mm(w2_t) - y_t).pow(2).sum()
loss_t.backward()
max_abs_diff = max(
    float(np.abs(hand_grad_w1 - w1_t.grad.cpu().numpy()).max()),
    float(np.abs(hand_grad_w2 - w2_t.grad.cpu().numpy()).max()),
)
