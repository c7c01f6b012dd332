"""Forwarding stored events and alert changes to a court's SIEM (docs/export.md).

``config``: the ``[[export.outputs]]`` tables of collector.toml; ``ecs`` and
``cef``: what one record says, in Elastic Common Schema JSON or ArcSight CEF
(``ecs`` is the one field mapping, docs/ecs.md describes it); ``syslog``:
RFC 5424 messages framed by octet counting, sent over TLS (RFC 5425);
``https``: newline-delimited JSON over HTTPS; ``cursor``: each output's
durable position in the store; ``exporter``: the background loop of one
output; ``metrics``: its Prometheus series; ``status``: what
``courtguard-collector export status`` prints.
"""
