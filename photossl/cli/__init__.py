"""The ``photossl`` command line."""
