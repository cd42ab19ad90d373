module locust-operator.local/realnode-tool

go 1.24
