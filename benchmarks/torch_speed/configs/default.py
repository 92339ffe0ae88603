"""The side-by-side workloads, identical for metajax and plain PyTorch, on the CPU.

- ProtoNet (Snell et al. 2017): the training episode, 60-way 1-shot and 5-shot with 5
  queries per class, one episode per meta-step, Conv-4 (64 filters), Adam 1e-3.
- LSTM baseline (Santoro et al. 2016, Table 1): 16 sequences of 50 steps (5 ways, 10
  instances), 20x20 images, a 200-unit LSTM, Adam 1e-3 with the gradient clipped to a
  global norm of 10.

The inputs are uniform random images (no data set is needed for a speed measurement).
Timing as in ``maml_speed``: ``warmup`` untimed meta-steps, then the median of ``steps``
timed ones, in each of ``repetitions`` rounds that interleave the workloads and the two
sides, each measurement in its own process, torch on ``torch_threads`` threads.
"""


def get_config():
    return dict(
        workloads=("protonet-1", "protonet-5", "lstm"),
        protonet=dict(ways=60, queries=5, filters=64, blocks=4, image=(28, 28, 1), pool=(200, 20)),
        lstm=dict(ways=5, instances=10, hidden=200, image_size=20, tasks=16, pool=(200, 20)),
        learning_rate=1e-3,
        clip_norm=10.0,
        steps=20,
        warmup=2,
        repetitions=3,
        torch_threads=2,
        seed=0,
    )
