import torch

x = torch.randn(3, requires_grad=True)
y = x * 2
z = y.mean()

gradients = torch.autograd.grad(outputs=z, inputs=x, create_graph=True) # create_graph for higher-order gradients
print(gradients[0]) # gradients[0] contains the gradient of z with respect to x.

#Further operations can be done with the computed gradient without calling backward again
w = gradients[0] * 3
print(w)
