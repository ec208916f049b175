"""`python -m switchboard_dev ...`: the whole `switchboard` command from a checkout, developer commands
included, without relying on the installed entry points."""

from services.cli import main
from switchboard_dev.commands import register

main(plugins=[register])
