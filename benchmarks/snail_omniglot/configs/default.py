"""CPU budget: SNAIL on Omniglot (Vinyals split), about 12 minutes of training per setting.

The paper's network and embedding (Mishra et al. 2018, Appendix; see
``metajax/snail.py``), each model trained at the ways and shots it is tested at,
on the 1200 train+val characters (4800 classes with rotations), Adam at 1e-3,
tested on the 423 test characters. What differs from the paper:

* the length: ``steps`` per setting is our estimate of what about 12 minutes of two
  CPU cores run (from the speed of a narrower model in ``tests/test_snail.py``), with
  ``time_limit`` (14 minutes) as a backstop; the records store the steps actually run.
  SNAIL sits at chance for the first ~200 steps (measured with the test's narrow
  model), so these runs are far from converged;
* several queries per class in a training episode, where each of the paper's
  sequences holds one query: the queries share the support positions (see
  ``metajax/snail.py``), so more queries add training signal for little compute;
* small meta-batches (4 and 1 episodes), about 100 images per meta-step;
* evaluation on 1000 (5-way) and 600 (20-way) test episodes of 5 queries per class.
"""


def get_config():
    return dict(
        settings={
            "5w1s": dict(
                ways=5,
                shots=1,
                queries=5,
                tasks=4,
                steps=1500,
                test_queries=5,
                eval_episodes=1000,
            ),
            "20w1s": dict(
                ways=20,
                shots=1,
                queries=4,
                tasks=1,
                steps=1500,
                test_queries=5,
                eval_episodes=600,
            ),
        },
        time_limit=840.0,  # seconds of training per setting; the steps should end first
        learning_rate=1e-3,
        trainval=True,
        eval_batch=20,  # episodes per jitted evaluation call
        seed=0,
        log_every=25,
    )
