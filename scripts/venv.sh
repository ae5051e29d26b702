# Sourced by the scripts that test against pinned PyPI packages (schemathesis.sh, interop.sh,
# django_import.sh): one way to make, check and reuse their venvs.
#
# pinned_venv VENV REQUIREMENTS WHAT [MARKER]
#   Reuses VENV when its stamp (the requirements file plus the interpreter's version) is
#   unchanged and VENV/MARKER exists (default bin/python); otherwise rebuilds it from
#   REQUIREMENTS with $PYTHON (3.10 or newer: WHAT names what needs it) and runs `pip check`.
#   Exits with a one-line reason when it cannot.
pinned_venv() {
  local venv="$1" requirements="$2" what="$3" marker="${4:-bin/python}" stamp
  command -v "$PYTHON" >/dev/null || { echo "no $PYTHON on PATH" >&2; exit 1; }
  stamp="$(cat "$requirements" <("$PYTHON" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
  if [ -x "$venv/$marker" ] && [ "$(cat "$venv/.sekisho-stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "reusing it (pins unchanged)"
    return
  fi
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "$PYTHON is older than 3.10 ($what needs 3.10+)" >&2; exit 1; }
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv" \
    || { echo "could not create a venv with $PYTHON (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  "$venv/bin/pip" check --disable-pip-version-check
  echo "$stamp" >"$venv/.sekisho-stamp"
}
