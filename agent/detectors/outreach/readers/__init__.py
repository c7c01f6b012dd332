"""What the outreach source reads: each reader gathers one kind of observation, none decides.

``links`` (rtnetlink through ``netlink``, sysfs facts from ``interfaces``),
``flows`` (NFLOG from the ``kernel_filter`` table, packets parsed by
``packets``, owners from ``attribution``), ``probes`` and ``host_settings``.
"""
