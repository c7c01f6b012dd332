"""The documents (裁判文书上网审查) detector: judgment documents checked before they go online.

Modules: ``policy`` (the ``documents`` policy model), ``observations`` (what
the source yields), ``detector`` (findings), ``evidence`` (typed event
evidence), ``spec`` (the registry entry), ``source`` (the publication-folder
watcher), and ``checker``, the engine the detector, ``courtguard-agent scan``
and the collector's check endpoint share. See docs/documents.md.
"""
