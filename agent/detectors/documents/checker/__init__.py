"""The judgment-document scanner: extraction, normalisation, validators, checks, fixes."""
