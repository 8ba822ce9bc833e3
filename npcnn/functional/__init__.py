"""Pure kernels, one module per concept: ``op_forward(...) -> (out, cache)`` and
``op_backward(dout, cache) -> grads``, each beside its slow loop twin ``op_naive``.

No state lives here: the layers of :mod:`npcnn.nn` validate their input, call these kernels and
keep the cache. ``geometry`` holds the output-size arithmetic and argument checks that every
convolution and pooling kernel shares; ``conv`` dispatches between im2col/GEMM, FFT and the direct
loop (``conv2d_forward(..., algo=)``).
"""
