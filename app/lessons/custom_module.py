"""Custom nn.Module: write the network as your own class.

Subclass torch.nn.Module, create the layers in __init__ and say how they connect
in forward. Plain SGD updates the weights.
The explorer provides the config values (N, D_in, H, D_out, learning_rate,
iterations, device, seed, zero_grad) and the list `losses`.
"""

import torch


class TwoLayerNet(torch.nn.Module):
    def __init__(self, D_in, H, D_out):
        super().__init__()
        self.linear1 = torch.nn.Linear(D_in, H)
        self.linear2 = torch.nn.Linear(H, D_out)

    def forward(self, x):
        # [forward] Runs each time the model is called
        h_relu = self.linear1(x).clamp(min=0)
        y_pred = self.linear2(h_relu)
        return y_pred


torch.manual_seed(seed)

# Random input and output data
x = torch.randn(N, D_in, device=device)
y = torch.randn(N, D_out, device=device)

# Build the model, the loss and the optimizer
model = TwoLayerNet(D_in, H, D_out).to(device)
loss_fn = torch.nn.MSELoss(reduction="sum")
optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)

for t in range(iterations):
    # [forward] Forward pass: calling the model runs TwoLayerNet.forward
    y_pred = model(x)

    # [loss] Sum of squared errors
    loss = loss_fn(y_pred, y)
    losses.append(loss.item())

    # [zero_grad] Clear the gradients of the previous iteration before backward
    if zero_grad:
        optimizer.zero_grad()

    # [backward] Gradients for every parameter of the model
    loss.backward()

    # [update] One SGD step: param -= lr * param.grad
    optimizer.step()
