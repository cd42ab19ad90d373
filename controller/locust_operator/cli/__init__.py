"""The command line: click commands and their text output."""
