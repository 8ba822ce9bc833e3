"""A checkpoint written by rank 0 of a 2-rank run resumes in a world of a different size.

    mpirun -n 2 python tests/mpi/check_resume.py train DIR
        fit 2 epochs (global batch 8 = 4 per rank, SyncBatchNorm); rank 0 writes
        DIR/epoch1.npz after epoch 1 and DIR/final.npz (the weights) at the end.
    python tests/mpi/check_resume.py resume DIR          (no mpirun: a world of one process)
        resume from DIR/epoch1.npz with batch 8 on one rank, fit to epoch 2, and compare the
        weights with DIR/final.npz (float64, 1e-10).

Same global batches either way: step b of an epoch reads perm[8b:8b+8] of that epoch's
permutation whatever the number of ranks (DistributedSampler), and SyncBatchNorm over 4 + 4
samples equals BatchNorm over the 8.
"""

import os
import sys

import numpy as np

from _common import assert_close, cnn, dataset

import npcnn.distributed as dist
from npcnn import data, nn, optim, train

mode, directory = sys.argv[1], sys.argv[2]
model = cnn(seed=2)
optimizer = optim.Adam(model.parameters(), lr=1e-2)
loader = data.DataLoader(dataset(32), batch_size=8, shuffle=True)
model, optimizer, loader, comm, is_main = dist.setup_training(model, optimizer, loader, sync_batchnorm=True,
                                                              split_batch=True)
trainer = train.Trainer(model, nn.CrossEntropyLoss(), optimizer, verbose=0)
checkpoint = os.path.join(directory, "epoch1.npz")

if mode == "train":
    assert comm.size == 2 and loader.batch_size == 4, (comm.size, loader.batch_size)
    trainer.fit(loader, epochs=1)
    if is_main:
        trainer.save_checkpoint(checkpoint)
    trainer.fit(loader, epochs=2)
    if is_main:
        np.savez(os.path.join(directory, "final.npz"), **model.state_dict())
        print(f"trained 2 epochs on {comm.size} ranks", flush=True)
else:
    assert comm.size == 1 and loader.batch_size == 8, (comm.size, loader.batch_size)
    trainer.fit(loader, epochs=2, resume_from=checkpoint)
    assert trainer.epoch == 2
    with np.load(os.path.join(directory, "final.npz")) as expected:
        for name, value in model.state_dict().items():
            assert_close(value, expected[name], 1e-10, 1e-12, f"resumed on 1 rank: {name}")
    print("PASS check_resume: the 1-process resume of a 2-rank checkpoint matches the 2-rank run")
