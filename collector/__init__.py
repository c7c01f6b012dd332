"""The courtguard collector.

Its own policy kinds join ``POLICY_KINDS`` as soon as any collector module is
imported, so the loader, ``policy check`` and bundle parsing it runs from
``agent.policy`` know them; agents never import this package.
"""

import collector.routing.policy  # noqa: F401 - imported for its kind registration
