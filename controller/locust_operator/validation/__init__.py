"""Validation of user input against the CRD itself, and bounded reading of input files."""
