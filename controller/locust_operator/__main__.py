from locust_operator.cli import main

main()
