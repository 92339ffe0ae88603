"""CPU budget: MANN and its LSTM baseline on Omniglot, about 12 minutes of training each.

Santoro et al. 2016 (Table 1): 5-way episodes, each class presented 10 times in a
shuffled sequence of 50 steps with the previous step's label as input; accuracy at
the 1st, 2nd, 3rd, 4th, 5th and 10th instance. The paper's models (MANN: a 200-unit
LSTM controller, 128 x 40 memory, 4 read heads; LSTM: 200 units), 20x20 images, 16
episodes per update, trained on the 1200 train + validation characters of the
Vinyals split and tested on its 423 test characters (rotations are extra classes in
both; Santoro et al. also split 1200/423, but we do not know their characters).

What differs from the paper:

* the length: ``steps`` meta-steps (about 12 minutes each on 2 uncontended CPU
  cores, and at most ``time_limit`` seconds) instead of 100,000;
* the optimizer: Adam at 1e-3 instead of RMSProp at 1e-4, which in a few thousand
  updates barely moves; gradients are clipped to a global norm of 10 in both configs;
* no data augmentation (the paper translates and rotates examples slightly);
* the learned key strength of the MANN (see ``metajax.learners.model.mann``).

Test numbers are the per-instance accuracies of the loss's metrics over
``eval_episodes`` sequences of unseen test classes.
"""


def get_config():
    return dict(
        ways=5,
        instances=10,
        image_size=20,
        mann=dict(
            memory_slots=128, memory_size=40, read_heads=4, controller=200, key_strength=True
        ),
        lstm=dict(hidden=200),
        tasks=16,
        # MANN is about 2.5x slower per step than the LSTM; ~12 minutes each.
        steps={"MANN": 2400, "LSTM": 6000},
        time_limit=900.0,
        optimizer="adam",
        learning_rate=1e-3,
        rmsprop_decay=0.95,
        clip_norm=10.0,
        eval_episodes=1000,
        seed=0,
        log_every=50,
    )
