"""CPU budget: Meta Networks on Omniglot (Vinyals split), about 12 minutes of training per model.

The paper's MetaNet (metajax.learners.model.metanet: five layer-augmented 3x3 conv blocks, a hidden
layer of 64, m and d of 20 units, T = 5, second order) with 32 filters instead of 64,
which makes the per-coordinate networks m and d, the dominant cost, four times
cheaper. Adam at 1e-3 with global-norm clipping at 10 and one episode per update, as
in the released code; each model trains at the ways and shots it is tested at, on
the 1200 train+val characters. What differs from the paper is the length (a few
hundred episodes instead of tens of thousands) and the queries per class in a
training episode (5 instead of the released script's 10), to fit the CPU. Steps are
set per setting for about 12 minutes on 2 cores; ``time_limit`` stops a slower run.
"""


def get_config():
    return dict(
        settings={
            "5w1s": dict(
                ways=5,
                shots=1,
                queries=5,
                steps=900,
                test_queries=5,
                eval_episodes=1000,
                eval_batch=50,
            ),
            "20w1s": dict(
                ways=20,
                shots=1,
                queries=5,
                steps=240,
                test_queries=5,
                eval_episodes=600,
                eval_batch=20,
            ),
        },
        model=dict(filters=32, blocks=5, hidden=(64,), meta_hidden=20, representation_steps=5),
        time_limit=900.0,
        learning_rate=1e-3,
        clip_norm=10.0,
        trainval=True,
        seed=0,
        log_every=10,
    )
