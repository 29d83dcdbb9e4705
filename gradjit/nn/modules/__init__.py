"""torch.nn.modules for gradjit: PyTorch's per-file submodules (`torch.nn.modules.linear.
Linear`, as scripts name classes for torch.serialization.safe_globals), each a namespace
holding the same classes as gradjit.nn."""
import sys
import types

import tracer.nn as _nn
from tracer.nn.transformer import NonDynamicallyQuantizableLinear

from gradjit._missing import missing_names

# PyTorch's file for each class (torch/nn/modules/<file>.py)
FILES = {
    "module": ["Module"],
    "linear": ["Identity", "Linear", "NonDynamicallyQuantizableLinear"],
    "activation": ["CELU", "ELU", "GELU", "GLU", "Hardsigmoid", "Hardswish", "Hardtanh",
                   "LeakyReLU", "LogSigmoid", "LogSoftmax", "Mish", "MultiheadAttention",
                   "ReLU", "ReLU6", "SELU", "SiLU", "Sigmoid", "Softmax", "Softmin",
                   "Softplus", "Softsign", "Tanh"],
    "container": ["ModuleDict", "ModuleList", "ParameterDict", "ParameterList", "Sequential"],
    "conv": ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"],
    "dropout": ["AlphaDropout", "Dropout", "Dropout1d", "Dropout2d"],
    "flatten": ["Flatten", "Unflatten"],
    "batchnorm": ["BatchNorm1d", "BatchNorm2d"],
    "instancenorm": ["InstanceNorm1d", "InstanceNorm2d"],
    "normalization": ["GroupNorm", "LayerNorm", "RMSNorm"],
    "pooling": ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d",
                "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "MaxPool1d", "MaxPool2d",
                "MaxUnpool1d", "MaxUnpool2d"],
    "rnn": ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"],
    "sparse": ["Embedding"],
    "distance": ["CosineSimilarity"],
    "transformer": ["Transformer", "TransformerDecoder", "TransformerDecoderLayer",
                    "TransformerEncoder", "TransformerEncoderLayer"],
    "loss": ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "KLDivLoss",
             "L1Loss", "MSELoss", "MarginRankingLoss", "NLLLoss", "SmoothL1Loss",
             "SoftMarginLoss"],
}


def _submodule(file: str, names: list) -> types.ModuleType:
    module = types.ModuleType(f"{__name__}.{file}", f"torch.nn.modules.{file} for gradjit")
    for name in names:
        if name == "NonDynamicallyQuantizableLinear":
            setattr(module, name, NonDynamicallyQuantizableLinear)
        elif hasattr(_nn, name):
            setattr(module, name, getattr(_nn, name))
    module.__getattr__ = missing_names(f"torch.nn.modules.{file}", module.__name__)
    sys.modules[module.__name__] = module
    return module


for _file, _names in FILES.items():
    globals()[_file] = _submodule(_file, _names)

__all__ = sorted(FILES)
__getattr__ = missing_names("torch.nn.modules", __name__)
