#!/usr/bin/env bash
# Keeps the gettext catalogs (Babel): after marking strings with _() / N_() in explorer/ or pages/,
#   bash scripts/translations.sh update    # extract into explorer/locale/explorer.pot, merge into ko
#   (translate the new or fuzzy entries in explorer/locale/ko/LC_MESSAGES/explorer.po)
#   bash scripts/translations.sh compile   # the .mo the app reads (committed; tests/test_i18n.py
#                                          # fails while it differs from the .po)
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL="${PYBABEL:-.venv/bin/pybabel}"
case "${1:-}" in
  update)
    "$PYBABEL" extract -F babel.cfg -k N_ -k ngettext:1,2 --no-location --sort-output --no-wrap \
      --project "Inception Explorer" --copyright-holder "Inception Explorer" \
      -o explorer/locale/explorer.pot .
    if [ -f explorer/locale/ko/LC_MESSAGES/explorer.po ]; then
      "$PYBABEL" update -i explorer/locale/explorer.pot -d explorer/locale -D explorer -l ko \
        --no-wrap --ignore-obsolete
    else
      "$PYBABEL" init -i explorer/locale/explorer.pot -d explorer/locale -D explorer -l ko --no-wrap
    fi ;;
  compile)
    "$PYBABEL" compile -d explorer/locale -D explorer --statistics ;;
  *) echo "usage: $0 update|compile" >&2; exit 2 ;;
esac
