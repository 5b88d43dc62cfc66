from edgeirst.cli import main

main()
