"""What the accounts source reads: each reader gathers one kind of observation, none decides.

``authlog`` (the systemd journal, else the syslog files, lines parsed by
``authlog_parser``), ``host`` (sessions, processes, groups, mounts) and
``files`` (inotify under protected, persistence and agent paths). Each blocks
in a thread of its own; ``source.AccountsSource`` merges them into one stream.
"""
