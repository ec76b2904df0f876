"""Private parts of AMCPruner: the DDPG agent and the layer-by-layer pruning environment."""
