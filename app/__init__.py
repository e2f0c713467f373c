"""Autograd Explorer: step through PyTorch autograd like a debugger."""
