"""Learning primitives shared by every algorithm family: networks, action distributions, the
observation normaliser, returns (GAE, n-step) and the optimiser step."""
