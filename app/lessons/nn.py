"""nn: build the network from torch.nn layers and let autograd differentiate it.

nn.Sequential stacks modules; each Linear layer owns a weight and a bias that
require gradients. The update is still written by hand.
The explorer provides the config values (N, D_in, H, D_out, learning_rate,
iterations, device, seed, zero_grad) and the list `losses`.
"""

import torch

torch.manual_seed(seed)

# Random input and output data
x = torch.randn(N, D_in, device=device)
y = torch.randn(N, D_out, device=device)

# The model: Linear -> ReLU -> Linear, its parameters initialised by each layer
model = torch.nn.Sequential(
    torch.nn.Linear(D_in, H),
    torch.nn.ReLU(),
    torch.nn.Linear(H, D_out),
).to(device)
loss_fn = torch.nn.MSELoss(reduction="sum")

for t in range(iterations):
    # [forward] Forward pass: call the model like a function
    y_pred = model(x)

    # [loss] Sum of squared errors
    loss = loss_fn(y_pred, y)
    losses.append(loss.item())

    # [zero_grad] Clear the gradients of the previous iteration before backward
    if zero_grad:
        model.zero_grad()

    # [backward] Gradients for every parameter of the model
    loss.backward()

    # [update] Gradient descent on each parameter, outside the graph
    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad
