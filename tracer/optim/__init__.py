"""torch.optim for gradjit: SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, LBFGS and
lr_scheduler.

One module per optimizer family; tracer/optim/base.py holds the compiled-step machinery.
"""
from tracer.optim.adadelta import Adadelta
from tracer.optim.adagrad import Adagrad
from tracer.optim.adam import Adam, AdamW
from tracer.optim.base import Optimizer
from tracer.optim.lbfgs import LBFGS
from tracer.optim.rmsprop import RMSprop
from tracer.optim.sgd import SGD
from tracer.optim import lr_scheduler  # noqa: F401  (optim.lr_scheduler.StepLR)

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "LBFGS"]
