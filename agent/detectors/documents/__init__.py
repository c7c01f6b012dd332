"""The documents (裁判文书上网审查) detector: judgment documents checked before they go online.

Modules: ``policy`` (the ``documents`` policy model), ``observations`` (what
the source yields), ``detector`` (findings), ``evidence`` (typed event
evidence), ``spec`` (the registry entry), ``source`` (each new document
once, extracted in a child process), which reads through ``readers``:
``folders`` (the publication folders, watched), and ``checker``, the engine
the detector, ``courtguard-agent scan`` and the collector's check endpoint
share. See docs/documents.md.
"""
