"""Training: rollout collection, losses, the trainer loop, checkpoints and logging."""
