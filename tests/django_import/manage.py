#!/usr/bin/env python3
"""The Django project that scripts/django_import.sh migrates, fills (`seed`) and moves into
sekisho. Its database is the SQLite file named by DJANGO_IMPORT_DB."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
