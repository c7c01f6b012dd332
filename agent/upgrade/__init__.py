"""Signed agent upgrades: the release checks, the client that fetches them, the upgrader."""
