from locust_operator.cli.main import main

main()
