import torch

class MyCustomFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input) # Save the input for the backward pass (if needed later)
        return input * 2

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        grad_input = grad_output * 2 # simple gradient calculation here
        return grad_input

x = torch.randn(3, requires_grad=True)
my_func = MyCustomFunction.apply
y = my_func(x)
# No backward() call needed here if the gradient is not required immediately

# demonstrate access to the grad if backward is called explicitly later
y.backward()
print(x.grad)
