"""CPU budget: ProtoNet on Omniglot (Vinyals split) within 30 minutes of training per model.

As in Snell et al. 2017 (§3.1), one model per shot count is trained on 60-way
episodes with 5 queries per class and tested at 5 and 20 ways; the learning rate
starts at 1e-3 and is halved on a schedule. What differs from the paper is the
length: a few hundred episodes instead of tens of thousands, so the halving comes
every third of the run instead of every 2000 episodes. ``time_limit`` (seconds of
training per model, none here) stops a run early; the record keeps the steps it ran.
"""


def get_config():
    return dict(
        train_ways=60,
        queries=5,
        steps={1: 1000, 5: 500},
        time_limit=None,
        learning_rate=1e-3,
        decay_every={1: 350, 5: 175},
        test_ways=(5, 20),
        test_queries=15,
        eval_episodes=1000,
        trainval=True,
        seed=0,
        log_every=50,
    )
