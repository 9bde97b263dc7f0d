#!/usr/bin/env bash
# Creates .venv-rasa with the real Rasa 3.6.21 server (the last open-source Rasa).
# Rasa 3.6 supports Python 3.8-3.10: we look for 3.10 ($RASA_PYTHON, pyenv,
# python3.10 on PATH) and say which one we use. Recipe: rasa-server/INSTALL.md.
set -euo pipefail
cd "$(dirname "$0")/.."
target=.venv-rasa
py="${RASA_PYTHON:-}"
if [ -z "$py" ] && command -v pyenv >/dev/null 2>&1; then
  for candidate in "$(pyenv root)"/versions/3.10.*/bin/python3.10; do
    [ -x "$candidate" ] && py="$candidate"
  done
fi
if [ -z "$py" ] && command -v python3.10 >/dev/null 2>&1; then
  py="$(command -v python3.10)"
fi
rm -rf "$target"
if [ -n "$py" ]; then
  echo "install-rasa: Rasa 3.6.21 on $py ($("$py" --version))"
  "$py" -m venv "$target"
  "$target/bin/pip" install -q --upgrade "pip<24.1"
  # python-socketio must stay below 5.10 (RasaHQ/rasa#13027): the widget's room
  # is never joined with newer releases and pushed messages go nowhere.
  "$target/bin/pip" install -q -c rasa-server/rasa-3.6.21-py310.lock.txt \
    rasa==3.6.21 python-socketio==5.9.0
else
  echo "install-rasa: no Python 3.10 found (set RASA_PYTHON to one);" \
       "falling back to Python 3.11 with every package pinned (REST and API work;" \
       "the web widget needs Python 3.10, see rasa-server/INSTALL.md)" >&2
  python3 -m venv "$target"
  "$target/bin/pip" install -q --ignore-requires-python --no-deps \
    -r rasa-server/rasa-3.6.21-py311.lock.txt
fi
"$target/bin/rasa" --version | sed -n 1,3p
touch "$target/.installed"
