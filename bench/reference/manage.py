#!/usr/bin/env python
"""The reference project's management entry point (bench/compare.sh drives it)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
