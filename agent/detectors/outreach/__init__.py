"""The outreach (违规外联) detector: every way a workstation can reach the outside.

Modules: ``spec`` (the registry entry), ``policy`` (the ``networks`` policy
model), ``observations`` (what the readers yield), ``evidence`` (typed event
evidence), ``judgement`` (pure verdicts), ``candidates`` (pure: what each
observation could be reported as), ``detector`` (pure: findings and
aggregation), ``response_plan`` (pure: which interfaces to block, which links
to take down or give back), ``response`` (carries that plan out), and
``source``, which merges the readers in ``readers``: ``links`` (rtnetlink via
``netlink``, sysfs facts via ``interfaces``), ``flows`` (the ``kernel_filter``
table's NFLOG, parsed by ``packets``, owners from ``attribution``),
``probes`` and ``host_settings``. See docs/outreach.md.
"""
