"""optim: let an optimizer update the weights, here Adam.

The optimizer holds references to the parameters and its own state for each
of them; optimizer.step() applies the update rule.
The explorer provides the config values (N, D_in, H, D_out, learning_rate,
iterations, device, seed, zero_grad) and the list `losses`.
"""

import torch

torch.manual_seed(seed)

# Random input and output data
x = torch.randn(N, D_in, device=device)
y = torch.randn(N, D_out, device=device)

# The model and the loss, as in the nn lesson
model = torch.nn.Sequential(
    torch.nn.Linear(D_in, H),
    torch.nn.ReLU(),
    torch.nn.Linear(H, D_out),
).to(device)
loss_fn = torch.nn.MSELoss(reduction="sum")

# Adam keeps running averages of each parameter's gradient and squared gradient
optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)

for t in range(iterations):
    # [forward] Forward pass
    y_pred = model(x)

    # [loss] Sum of squared errors
    loss = loss_fn(y_pred, y)
    losses.append(loss.item())

    # [zero_grad] Clear the gradients of the previous iteration before backward
    if zero_grad:
        optimizer.zero_grad()

    # [backward] Gradients for every parameter of the model
    loss.backward()

    # [update] One Adam step on every parameter
    optimizer.step()
