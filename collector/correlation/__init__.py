"""Rules the collector evaluates across hosts (``scope: collector`` in a policy file).

* ``registry``: every correlator, written down once (pure, run by the rules' cases);
* ``accounts``, ``silent``, ``liveness``: the pure decisions;
* ``account_pass``, ``silent_pass``: the passes that feed them from the store
  and store what they conclude;
* ``runner``: runs every pass on its own interval in each collector process.
"""
