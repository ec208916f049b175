"""`python -m services.cli ...`: the `switchboard` command."""

from services.cli import main

main()
