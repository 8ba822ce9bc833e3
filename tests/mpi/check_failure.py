"""A rank that hangs or dies makes the job stop with a clear error, never a silent hang.

    mpirun -n 2 python tests/mpi/check_failure.py hang DIR
        rank 1 stops calling collectives (sleeps); rank 0's next all-reduce gives up after the
        2 s timeout, prints which collective it waited for, and aborts the job.
    mpirun -n 2 python tests/mpi/check_failure.py kill DIR
        rank 0 writes a checkpoint after 2 steps; then rank 1 is killed (SIGKILL) while rank 0
        goes on training; the job must end with an error naming the dead rank, and the
        checkpoint must load and hold the weights of step 2 (saved beside it in expected.npz).

The driver in tests/test_distributed.py checks the exit status, the time and the message.
"""

import os
import signal
import sys
import time

import numpy as np

from _common import cnn, dataset

import npcnn.distributed as dist
from npcnn import nn, optim, train

mode, directory = sys.argv[1], sys.argv[2]
comm = dist.init(timeout=2.0)
rank = comm.rank

model = cnn(seed=1)
optimizer = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1))
loader = dist.DistributedDataLoader(dataset(16), batch_size=2, seed=0)
loss_fn = nn.CrossEntropyLoss()

for step, (x, y) in enumerate(loader, 1):
    if step == 3:
        if mode == "hang" and rank == 1:
            time.sleep(60)  # a hung rank: alive, but never joins the next collective
        if mode == "kill" and rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    optimizer.step()
    optimizer.zero_grad()
    if step == 2:
        if rank == 0:
            train.save_checkpoint(os.path.join(directory, "checkpoint.npz"), model, optimizer, epoch=0, loader=loader)
            np.savez(os.path.join(directory, "expected.npz"), **model.state_dict())
            print("checkpoint written after step 2", flush=True)
        comm.barrier()
print(f"rank {rank}: finished without noticing the failure", flush=True)  # must not happen
