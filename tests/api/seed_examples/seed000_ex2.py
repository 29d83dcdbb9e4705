import torch

# Create tensors WITHOUT requires_grad=True
x = torch.randn(3)
y = torch.randn(3)

# Perform operations
z = x * y
loss = z.mean()

try:
    # Attempt to compute gradients - this will raise an error
    loss.backward()
except RuntimeError as e:
    print(f"Caught expected RuntimeError: {e}")
