"""Dynamic net: ordinary Python control flow and weight sharing in a model.

Each forward pass reuses one middle layer a random number of times (0 to 3).
Autograd records the graph afresh on every call, so the graph can differ from
one iteration to the next. SGD with momentum updates the weights.
The explorer provides the config values (N, D_in, H, D_out, learning_rate,
iterations, device, seed, zero_grad, momentum) and the list `losses`.
"""

import random

import torch


class DynamicNet(torch.nn.Module):
    def __init__(self, D_in, H, D_out, rng):
        super().__init__()
        self.input_linear = torch.nn.Linear(D_in, H)
        self.middle_linear = torch.nn.Linear(H, H)
        self.output_linear = torch.nn.Linear(H, D_out)
        self.rng = rng

    def forward(self, x):
        # [forward] A plain Python loop decides how deep this forward pass is
        h_relu = self.input_linear(x).clamp(min=0)
        depth = self.rng.randint(0, 3)
        for _ in range(depth):
            h_relu = self.middle_linear(h_relu).clamp(min=0)
        y_pred = self.output_linear(h_relu)
        return y_pred


torch.manual_seed(seed)

# Random input and output data
x = torch.randn(N, D_in, device=device)
y = torch.randn(N, D_out, device=device)

# One random generator for the depths of the whole run
rng = random.Random(seed)

# Build the model, the loss and the optimizer
model = DynamicNet(D_in, H, D_out, rng).to(device)
loss_fn = torch.nn.MSELoss(reduction="sum")
optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum)

for t in range(iterations):
    # [forward] Forward pass: a new graph, with a new depth, on every call
    y_pred = model(x)

    # [loss] Sum of squared errors
    loss = loss_fn(y_pred, y)
    losses.append(loss.item())

    # [zero_grad] Clear the gradients of the previous iteration before backward
    if zero_grad:
        optimizer.zero_grad()

    # [backward] Gradients flow back through every use of middle_linear
    loss.backward()

    # [update] One SGD step with momentum
    optimizer.step()
