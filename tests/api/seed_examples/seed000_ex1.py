import torch

# Create tensors with requires_grad=True
x = torch.randn(3, requires_grad=True)
y = torch.randn(3, requires_grad=True)

# Perform operations
z = x * y
loss = z.mean()

# Compute gradients
loss.backward()

# Access gradients
print(x.grad)
print(y.grad)
