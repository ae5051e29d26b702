#!/usr/bin/env python3
"""The resource server's manage.py: `runserver` (the test runs it on 127.0.0.1, port 0) and
`mint_tokens`. Its SIMPLE_JWT comes from the environment (resource_server/settings.py)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "resource_server.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
