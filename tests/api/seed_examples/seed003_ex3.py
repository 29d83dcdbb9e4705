import torch

x = torch.randn(3, requires_grad=True)
y = x * 2
y += 1 # In-place operation
loss = y.sum()
try:
  loss.backward()
except RuntimeError as e:
  print(f"Error: {e}")
  # Potential Error: The error might not always occur here, because PyTorch *sometimes* tolerates this.  But it's best practice to avoid in-place operations for the sake of reproducibility and clarity.
