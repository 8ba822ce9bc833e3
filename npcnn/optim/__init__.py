"""Optimizers (SGD, Adagrad, RMSprop, Adam, AdamW) and learning-rate schedules."""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .penalty import add_weight_penalty, weight_penalty
from .rmsprop import RMSprop
from .sgd import SGD
