"""torch.nn for gradjit: Module, Parameter, layers, losses, functional and init."""
from tracer.nn import functional, init
from tracer.nn.layers import (CrossEntropyLoss, Dropout, Flatten, Identity, L1Loss, LeakyReLU,
                              Linear, LogSoftmax, ModuleDict, ModuleList, MSELoss, NLLLoss,
                              ParameterList, ReLU, Sequential, Sigmoid, SiLU, Softmax, Tanh)
from tracer.nn.module import Module, Parameter

__all__ = ["Module", "Parameter", "Linear", "Identity", "ReLU", "Sigmoid", "Tanh", "SiLU",
           "LeakyReLU", "Softmax", "LogSoftmax", "Flatten", "Dropout", "Sequential",
           "ModuleList", "ModuleDict", "ParameterList", "MSELoss", "L1Loss", "NLLLoss",
           "CrossEntropyLoss", "functional", "init"]
