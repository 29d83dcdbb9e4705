import torch

x = torch.randn(3) # requires_grad defaults to False
y = x * 2
try:
    y.backward()
except RuntimeError as e:
    print(f"Error: {e}")
    #Expected output: Error: One of the differentiated Tensors does not require grad.
