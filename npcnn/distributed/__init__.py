"""Data-parallel training over MPI (NCCL for CuPy arrays).

Every rank holds a full replica of the model and trains on its own share of each batch;
gradients are averaged with an all-reduce before each step, so R ranks with batch B/R each
train like one process with batch B. mpi4py is imported only by :func:`init`, and only when
the process was started by ``mpirun``; otherwise the world is a single process and everything
here is a no-op, so the same script runs with and without MPI. See the README, "Training on many machines".
"""

from .comm import (
    CommunicationTimeout,
    Communicator,
    DistributedError,
    MPICommunicator,
    SingleProcess,
    ThreadCommunicator,
    all_gather,
    all_reduce,
    barrier,
    broadcast,
    get_local_rank,
    get_rank,
    get_world,
    get_world_size,
    init,
    is_available,
    is_initialized,
    is_main_process,
    launched_by_mpi,
    run_in_threads,
    set_world,
)
from .loader import DistributedDataLoader
from .optimizer import DistributedOptimizer
from .parallel import (
    DistributedTraining,
    average_across_ranks,
    broadcast_buffers,
    broadcast_parameters,
    replicas_identical,
    setup_training,
)
from .sampler import DistributedSampler
from .sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm
