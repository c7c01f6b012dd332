"""Host isolation (一键隔离) on the collector: requests, approvals, signed orders, hints."""
