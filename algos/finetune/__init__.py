"""Fine-tuning family: start from a pretrained policy and improve it from sparse outcomes and
interventions (HABC, its ablations, and PPO fine-tuning of the SFT policy)."""
