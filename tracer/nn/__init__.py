"""torch.nn for gradjit: Module, Parameter, layers, losses, functional and init."""
from tracer.nn import (activation, conv, conv_transpose, functional, init, loss, normalization,
                       rnn, transformer, transformer_decoder)
from tracer.nn.activation import *  # noqa: F401,F403
from tracer.nn.conv import *  # noqa: F401,F403
from tracer.nn.conv_transpose import *  # noqa: F401,F403
from tracer.nn.layers import (CrossEntropyLoss, Dropout, Flatten, Identity, L1Loss, LeakyReLU,
                              Linear, LogSoftmax, ModuleDict, ModuleList, MSELoss, NLLLoss,
                              ParameterDict, ParameterList, ReLU, Sequential, Sigmoid, SiLU,
                              Softmax, Tanh)
from tracer.nn.loss import *  # noqa: F401,F403
from tracer.nn.module import Module, Parameter
from tracer.nn.normalization import *  # noqa: F401,F403
from tracer.nn.rnn import *  # noqa: F401,F403
from tracer.nn.transformer import *  # noqa: F401,F403
from tracer.nn.transformer_decoder import *  # noqa: F401,F403

__all__ = ["Module", "Parameter", "Linear", "Identity", "ReLU", "Sigmoid", "Tanh", "SiLU",
           "LeakyReLU", "Softmax", "LogSoftmax", "Flatten", "Dropout", "Sequential",
           "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "MSELoss", "L1Loss",
           "NLLLoss", "CrossEntropyLoss", "functional", "init"]
for _m in (activation, conv, conv_transpose, loss, normalization, rnn, transformer,
           transformer_decoder):
    __all__ += _m.__all__
