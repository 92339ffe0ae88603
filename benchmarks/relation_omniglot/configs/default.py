"""CPU budget: Relation Networks on Omniglot (Vinyals split), 25 minutes of training per model.

As in Sung et al. 2018 (§4.1), each model trains at the ways and shots it is tested
at, with the paper's queries per class (19 for 5-way 1-shot, 10 for 20-way 1-shot),
one episode per update and Adam at 1e-3 halved every 100,000 episodes. What differs
from the paper is the length: training stops after ``time_limit`` seconds (a few
hundred to a few thousand episodes on a CPU instead of the released code's 1,000,000),
so the learning rate never reaches its first halving. Records store the steps run.
Test episodes use fewer queries at 20 ways than in training, to bound the CPU time.
"""


def get_config():
    return dict(
        settings={
            "5w1s": dict(ways=5, shots=1, queries=19, test_queries=15, eval_episodes=1000),
            "20w1s": dict(ways=20, shots=1, queries=10, test_queries=5, eval_episodes=600),
        },
        steps=100_000,
        time_limit=1500.0,
        learning_rate=1e-3,
        decay_every=100_000,
        trainval=True,
        seed=0,
        log_every=10,
    )
