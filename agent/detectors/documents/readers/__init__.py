"""What the documents source reads: each reader gathers, none decides.

``folders`` (the publication folders, watched with watchdog and walked once
at start: each file handed over once it has settled). ``source.DocumentsSource``
turns what it hands over into observations.
"""
