"""Off-policy family: the shared learner/behaviour machinery (`common`), critics, the replay
ring, and TD3, SAC, agency transfer and residual RL built on them."""
