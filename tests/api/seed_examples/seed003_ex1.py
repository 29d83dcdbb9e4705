import torch

x = torch.randn(3, requires_grad=True)
y = x * 2
z = y.detach()  # z is detached
w = z + 3
try:
    w.backward()
except RuntimeError as e:
    print(f"Error: {e}")
    #Expected output: Error: Trying to backward through the graph a second time, but the buffers have already been freed. Specify retain_graph=True if you need to backward through the graph a second time.
