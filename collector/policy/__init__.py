"""Central policy: check, bundle, sign, publish and serve policy to agent groups."""
