import torch

x = torch.randn(3, requires_grad=True)
y = torch.randn(3, requires_grad=True)

z = x * y
loss = z.mean()

# Condition to determine whether to perform backward pass
if loss > 0.5:
    loss.backward()
    print(x.grad)
    print(y.grad)
else:
    print("Loss too low; skipping backward pass.")
