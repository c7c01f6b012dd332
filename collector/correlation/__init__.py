"""Rules the collector evaluates across hosts (``scope: collector`` in a policy file)."""
