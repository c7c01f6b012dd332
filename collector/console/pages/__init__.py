"""The console's pages, one module per area, like ``collector.api``'s routers.

``collector.console.web`` assembles their routers into one; the machinery they
share (sign-in, role checks, forms, rendering) is ``collector.console.page``.
"""
