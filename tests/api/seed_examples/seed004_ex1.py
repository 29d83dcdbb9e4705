import torch

x = torch.randn(3, requires_grad=True)
y = x * 2
z = y.mean()
z.backward()

print(x.grad) # Gradients are computed and available after backward()
