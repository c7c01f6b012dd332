"""The collector's HTTP API: one router module per audience (agents, operators, monitoring)."""
