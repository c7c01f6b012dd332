"""What the example source reads: ``counter`` (a number in a file)."""
