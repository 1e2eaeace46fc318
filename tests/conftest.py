import torch as th

# Deterministic, and faster on 2 cores than torch's default thread pool for these small networks
th.set_num_threads(1)
