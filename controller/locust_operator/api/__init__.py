"""The contract: names, labels, ports, reasons, the time format, the operator's settings."""
