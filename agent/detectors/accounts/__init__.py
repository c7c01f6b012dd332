"""The outsourced-account detector (外包账号): contractor accounts held to their role.

Modules: ``spec`` (the registry entry), ``policy`` (the ``accounts`` policy
model), ``observations`` (what the readers yield), ``evidence`` (typed event
evidence), ``settings`` (``[accounts]`` in agent.toml), ``detector`` (pure:
findings) with its rule groups ``logins`` and ``activity`` and their shared
``state``, and ``source``, which merges the readers in ``readers``:
``authlog`` (journal or syslog files, parsed by ``authlog_parser``), ``host``
(sessions, processes, groups, mounts) and ``files`` (inotify). See
docs/accounts.md.
"""
