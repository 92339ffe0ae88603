"""CPU budget: TapNet on JapaneseVowels and BasicMotions, a few minutes per model.

The paper's architecture (Zhang et al. 2020: three convolutions of 256/256/128
filters with kernels 8/5/3, a 128-unit LSTM, mapping layers 500 and 300, 128-unit
attention, 3 permutation groups), and its protocol: the official train split is the
support set and the official test split is scored. What differs is the optimisation:
Adam at 1e-3 without weight decay for a few hundred episodes (each class's training
series split in half, support and query) instead of the released code's full-batch
Adam at 1e-5 with weight decay 1e-3 for up to 3000 epochs (configs/paper.py). Each
model also stops at ``time_limit`` seconds of training (the steps run are recorded).

The N-way k-shot rows are extra (no paper number): JapaneseVowels' 9 speakers split
6 meta-train / 3 meta-test (both official splits pooled, every class capped to its
smallest count, 54 series), one model trained on 3-way 5-shot episodes and tested
on 3-way 1- and 5-shot episodes of the unseen speakers.
"""


def get_config():
    return dict(
        datasets=("JapaneseVowels", "BasicMotions"),
        filters=(256, 256, 128),
        kernels=(8, 5, 3),
        dilation=1,
        lstm_units=128,
        mapping=(500, 300),
        attention_units=128,
        groups=3,
        separation=0.0,
        support_fraction=0.5,
        learning_rate=1e-3,
        weight_decay=0.0,
        steps=300,
        time_limit=480.0,
        seed=0,
        log_every=10,
        episodic=dict(
            datasets=("JapaneseVowels",),
            test_fraction=1 / 3,
            ways=3,
            train_shots=5,
            queries=10,
            test_shots=(1, 5),
            test_queries=15,
            steps=300,
            time_limit=240.0,
            eval_episodes=600,
        ),
    )
