"""The shell: start-up, Kopf handlers, the per-test loop, API clients, creates."""
