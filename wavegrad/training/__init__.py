"""The shared training loop, checkpoints and the `wavegrad train` command."""
