"""Training: fit/evaluate, the Trainer, metrics, History, callbacks and checkpoints."""

from .callbacks import Callback, CSVLogger, EarlyStopping, LRLogger, ModelCheckpoint, TerminateOnNaN
from .guard import NonFiniteError, NonFiniteGradientError, NonFiniteLossError
from .checkpoint import load_checkpoint, save_checkpoint
from .history import History
from .loop import Trainer, evaluate, fit, train_step
from .outputs import save_run
from .metrics import Accuracy, ConfusionMatrix, Mean, accuracy, confusion_matrix, topk_accuracy
from .progress import ProgressBar
from . import recipes
