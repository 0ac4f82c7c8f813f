from solve_in_lean.cli import main

main()
