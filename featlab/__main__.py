from featlab.cli.main import main

main()
