"""locust-operator: distributed Locust load tests on Kubernetes.

Layers, each importing only those above it: `api` (the contract), `validation`,
`build` (pure builders), `rules` (pure decisions), `controller` (the shell),
`cli` (the command line). docs/operator.md has the map.
"""

from locust_operator.api.contract import API_VERSION, GROUP, KIND, PLURAL, VERSION

__version__ = "0.1.0"
__all__ = ["API_VERSION", "GROUP", "KIND", "PLURAL", "VERSION", "__version__"]
