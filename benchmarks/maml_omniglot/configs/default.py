"""CPU budget: the MAML family on Omniglot (Vinyals split), 5-way and 20-way 1-shot.

The papers' hyperparameters with a CPU-sized number of meta-steps and meta-batch:
MAML/FOMAML (Finn et al. 2017, §5.2): Conv-4 with an N-way head, inner SGD at 0.4 with
1 step (5-way) or 0.1 with 5 steps (20-way), 3 and 5 steps at test, Adam 1e-3.
iMAML (Rajeswaran et al. 2019): lambda = 2, inner SGD, 5 conjugate-gradient steps on the
damped system of the authors' released code, (2 I + H / (lambda + 10)) v = g; the exact,
undamped system is indefinite on Conv-4 and its meta-training diverged (RESULTS.md).
ANIL (Raghu et al. 2020): MAML's settings, the inner loop on the head alone.
Meta-SGD (Li et al. 2017): one inner step with learned per-parameter rates, initialised
uniformly in [0.005, 0.1], Adam 1e-3.
Reptile (Nichol et al. 2018, Table 3, Omniglot): 5 inner steps of Adam 1e-3 (b1 = 0) on
10 training shots per class, 50 at test, meta-batch 5, outer SGD at epsilon 1 annealed
linearly to 0. The paper's inner steps take minibatches of 10 of the support set; here
each takes the whole support set (metajax's inner loop is full-batch).
"""

IMAML = dict(proximal=2.0, cg_steps=5, damping=1.0, lambda_damping=10.0)


def get_config():
    return dict(
        methods=("MAML", "FOMAML", "iMAML", "Reptile", "Meta-SGD", "ANIL"),
        convolution="im2col",  # per-task weights: a batched matmul beats grouped convs on CPU
        ways=(5, 20),
        shots=(1,),  # also (1, 5): every method at each
        queries=15,
        tasks={5: 8, 20: 4},
        steps={5: 300, 20: 150},
        learning_rate=1e-3,
        maml={
            5: dict(inner_lr=0.4, inner_steps=1, test_inner_steps=3),
            20: dict(inner_lr=0.1, inner_steps=5, test_inner_steps=5),
        },
        imaml={
            5: dict(**IMAML, inner_lr=0.1, inner_steps=10),
            20: dict(**IMAML, inner_lr=0.1, inner_steps=10),
        },
        # iMAML is also scored as the authors' released evaluation adapts (None: not).
        imaml_released_test=dict(test_proximal=0.0, test_inner_steps=16),
        metasgd=dict(inner_steps=1, test_inner_steps=1, lr_init=(0.005, 0.1)),
        reptile=dict(
            inner_learning_rate=1e-3,
            inner_steps=5,
            test_inner_steps=50,
            train_shots=10,
            queries=5,  # scores the training metrics only; 10 shots + 5 fit Omniglot's 20
            tasks=5,
            epsilon=1.0,
        ),
        trainval=True,
        eval_episodes=600,
        seed=0,
        log_every=25,
    )
