"""A tiny detector built as docs/architecture.md says (tests/agent/test_example_detector.py).

Modules: ``spec`` (the registry entry), ``policy`` (the ``example`` policy
model), ``observations`` (what the reader yields), ``evidence`` (typed event
evidence), ``detector`` (pure: a count at or above the rule's threshold is a
finding) and ``source``, which reads through ``readers``: ``counter`` (a
number in a file of the data directory). Its policy is ``example.yaml`` here.
"""
