"""``python -m photossl`` runs the command line (also what ``torchrun -m photossl`` needs)."""

from photossl.cli.main import cli

if __name__ == "__main__":
    cli()
