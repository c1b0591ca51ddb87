"""Pulumi entry point: the FreeScout stack (see freescout/program.py)."""

from freescout import program

program.main()
