"""Signed agent releases: publish, target, serve, and follow a rollout (docs/upgrades.md)."""
