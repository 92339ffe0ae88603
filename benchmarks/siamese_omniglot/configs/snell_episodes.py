"""The default's three models on Snell et al.'s training episodes: 60-way 1-shot, 5 queries.

The CLI's ProtoNet on these episodes (``metajax train --dataset omniglot-lake --ways 60
--shots 1 --queries 5``) reaches about 88% on Lake's task in 800 steps: each episode
holds 360 images from all 30 background alphabets, six times the 60 of a 20-way
within-alphabet episode with two queries, and 18,000 support-query pairs. Adam 1e-3,
halved once after 800 steps; 1200 steps or 15 minutes for the first model.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.update(
        sampler="random",
        train_ways=60,
        queries=5,
        steps=1200,
        decay_every=800,
        time_limit=900.0,
        tag="60w1s5q training episodes",
    )
    return config
