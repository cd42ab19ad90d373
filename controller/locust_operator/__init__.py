"""locust-operator: distributed Locust load tests on Kubernetes."""

__version__ = "0.1.0"

GROUP = "locust.io"
VERSION = "v2"
PLURAL = "locusttests"
KIND = "LocustTest"
API_VERSION = f"{GROUP}/{VERSION}"
