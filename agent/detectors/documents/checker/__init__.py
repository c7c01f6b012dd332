"""The judgment-document checker: extraction, normalisation, validators, checks, fixes.

Text flows ``extract`` → ``normalize`` → ``scanner``, which runs the checks
``checks`` lists (in ``names``, ``withheld``, ``identifiers``, ``address``,
over the ``context`` they share) and decides the verdict. ``command`` and
``fix`` are ``courtguard-agent scan``; ``worker`` and ``child`` run
extraction in processes under memory and CPU limits.
"""
