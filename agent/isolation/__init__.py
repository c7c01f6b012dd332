"""Host isolation (一键隔离) on a signed order from the collector: order, table, keeper."""
