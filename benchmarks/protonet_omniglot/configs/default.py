"""CPU budget: ProtoNet on Omniglot (Vinyals split), up to 45 minutes of training per model.

As in Snell et al. 2017 (§3.1), one model per shot count is trained on 60-way
episodes with 5 queries per class and tested at 5 and 20 ways; the learning rate
starts at 1e-3 and is halved on a schedule. The 1-shot model keeps the paper's
halving every 2000 episodes for 6000 episodes (a 60-way 1-shot step takes about
0.4 s on 2 cores); the 5-shot model, whose episodes cost twice as much, halves every
1000 of 3000. What differs from the paper is the length: Snell et al. stop on
validation loss, tens of thousands of episodes in. ``time_limit`` (seconds of training
per model) stops a slower machine early; the record keeps the steps it ran.
"""


def get_config():
    return dict(
        train_ways=60,
        queries=5,
        steps={1: 6000, 5: 3000},
        time_limit=2700.0,
        learning_rate=1e-3,
        decay_every={1: 2000, 5: 1000},
        test_ways=(5, 20),
        test_queries=15,
        eval_episodes=1000,
        trainval=True,
        seed=0,
        log_every=100,
    )
