"""Static graph: define the whole training step once, then run it again and again.

This is PyTorch's counterpart of TensorFlow 1's placeholders, tf.gradients and
sess.run: make_fx captures the forward pass, the gradients and the update as one
torch.fx graph, and the loop only feeds tensors through that fixed graph.
The explorer provides the config values (N, D_in, H, D_out, learning_rate,
iterations, device, seed) and the list `losses`.
"""

import torch
from torch.fx.experimental.proxy_tensor import make_fx

torch.manual_seed(seed)

# Random input and output data
x = torch.randn(N, D_in, device=device)
y = torch.randn(N, D_out, device=device)

# Randomly initialised weights: plain tensors, the graph computes their gradients
w1 = torch.randn(D_in, H, device=device)
w2 = torch.randn(H, D_out, device=device)


def loss_fn(w1, w2, x, y):
    y_pred = x.mm(w1).clamp(min=0).mm(w2)
    return (y_pred - y).pow(2).sum()


def train_step(w1, w2, x, y):
    (grad_w1, grad_w2), loss = torch.func.grad_and_value(loss_fn, argnums=(0, 1))(w1, w2, x, y)
    return w1 - learning_rate * grad_w1, w2 - learning_rate * grad_w2, loss


# Define: trace train_step once into a graph of aten ops
static_graph = make_fx(train_step)(w1, w2, x, y)

for t in range(iterations):
    # [forward] Run: forward, gradients and update, all inside the captured graph
    w1, w2, loss = static_graph(w1, w2, x, y)

    # [loss] The graph also returns the loss of the weights it started from
    losses.append(loss.item())
