"""Sinusoid regression of Finn et al. 2017, §5.1, at the paper's full length (cheap on a CPU).

MLP 40-40 with ReLU, inner SGD step 0.01, one inner step at training, K = 5 and 10
support points (and K query points) per task, meta-batch 25, Adam 1e-3 for 70,000
meta-steps. Test: 600 tasks of K support and 100 query points, MSE after 0, 1 and
10 inner steps. The pretrained baseline fits the same network to all tasks jointly
with the same optimizer and budget and is fine-tuned with the same steps.
"""


def get_config():
    return dict(
        hidden=(40, 40),
        inner_lr=0.01,
        inner_steps=1,
        shots=(5, 10),
        train_queries=None,  # None: as many query points as support points (K)
        test_queries=100,
        tasks=25,
        learning_rate=1e-3,
        steps=70_000,
        test_steps=(0, 1, 10),
        eval_episodes=600,
        seed=0,
        log_every=1000,
    )
