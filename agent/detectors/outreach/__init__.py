"""The outreach (违规外联) detector: every way a workstation can reach the outside.

Modules: ``policy`` (the ``networks`` policy model), ``observations`` (what
the source yields), ``judgement`` (pure verdicts shared by detector and
source), ``detector`` (findings and aggregation), ``evidence`` (typed event
evidence), ``source`` and the I/O modules it drives (``netlink``,
``interfaces``, ``kernel_filter``, ``packets``, ``attribution``, ``probe``,
``settings_files``, ``response``). See docs/outreach.md.
"""
