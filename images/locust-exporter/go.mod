module locust-operator.local/locust-exporter

go 1.22
