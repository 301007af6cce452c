#!/usr/bin/env bash
# The structure the architecture page (docs/architecture.md) promises, checked on the sources:
#  1. each layer includes only the layers below it (the table below);
#  2. the engine names no method: no header of a method's folder, no dynamic_cast;
#  3. a method's folder includes no other method's folder;
#  4. every method folder has its line in the registry, and every registry line its folder;
#  5. below app, no code looks an option up by its string (core/option_binding.h does it);
#  6. include/probnas/<layer> mirrors src/<layer>;
#  7. no source file exceeds 800 lines, and README.md has at most 200.
# Usage: check-structure.sh <source tree>. Prints every violation; exit code 1 if there is one.
set -euo pipefail
root=${1:?usage: check-structure.sh <source tree>}
cd "$root"
problems=0
fail() { echo "structure: $*"; problems=$((problems + 1)); }

# Layer -> the layers it may include (itself included), lowest first.
declare -A allowed=(
  [core]="core"
  [ckpt]="core ckpt"
  [run]="core ckpt run"
  [report]="core ckpt run report"
  [comm]="core comm"
  [data]="core ckpt comm data"
  [space]="core ckpt run data space"
  [optim]="core ckpt optim"
  [method]="core ckpt run report comm data space optim method"
  [engine]="core ckpt run report comm data space optim method engine"
  [app]="core ckpt run report comm data space optim method engine app"
)

for layer in "${!allowed[@]}"; do
  for dir in "src/$layer" "include/probnas/$layer"; do
    [[ -d $dir ]] || { fail "layer '$layer' has no $dir (include/probnas/<layer> mirrors src/<layer>)"; continue; }
    while IFS=: read -r file line text; do
      used=$(sed -E 's|.*#include "probnas/([a-z_]+)/.*|\1|' <<< "$text")
      [[ " ${allowed[$layer]} " == *" $used "* ]] ||
        fail "$file:$line: the $layer layer includes the $used layer ($text); it may include: ${allowed[$layer]}"
    done < <(grep -rnE '#include "probnas/[a-z_]+/' "$dir" || true)
  done
done
for dir in src/*/ include/probnas/*/; do
  layer=$(basename "$dir")
  [[ -n ${allowed[$layer]:-} ]] || fail "$dir: '$layer' is not a layer of the architecture table"
done

# The engine knows methods through the registry only.
methods=$(find src/method -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
for m in $methods; do
  if grep -rn "#include \"probnas/method/$m/" src/engine include/probnas/engine; then
    fail "the engine includes a header of the method folder '$m' (use the registry: method/registry.h)"
  fi
done
if grep -rn "dynamic_cast" src/engine include/probnas/engine; then fail "the engine casts to a concrete type"; fi

# Method folders are independent of each other.
for m in $methods; do
  for other in $methods; do
    [[ $m == "$other" ]] && continue
    if grep -rn "#include \"probnas/method/$other/" "src/method/$m" "include/probnas/method/$m" 2>/dev/null; then
      fail "the method folder '$m' includes the method folder '$other'"
    fi
  done
done

# One registry line per method folder, and a folder per registry line.
registered=$(sed -nE 's/^[[:space:]]*X\(([a-z0-9_]+)\).*/\1/p' src/method/registry.cpp | sort)
[[ "$registered" == "$methods" ]] ||
  fail "src/method/registry.cpp lists [$(echo $registered)], the method folders are [$(echo $methods)]"

# Options are read through their bindings below app.
if grep -rnE '\.(text|integer|real|boolean|is_default)\("[a-z_]+\.[a-z_0-9]+"\)' src include | grep -v '^src/app/\|^include/probnas/app/'; then
  fail "code below app reads options by their key strings (declare them with core/option_binding.h)"
fi

# Sizes.
while read -r lines file; do
  [[ $file == total ]] && continue
  ((lines <= 800)) || fail "$file has $lines lines (at most 800: split it by job)"
done < <(find src include tests bench -name '*.cpp' -o -name '*.h' | xargs wc -l)
readme=$(wc -l < README.md)
((readme <= 200)) || fail "README.md has $readme lines (at most 200: move the rest into docs/)"

if ((problems > 0)); then
  echo "structure: $problems problem(s)"
  exit 1
fi
echo "structure: layers, method registry, typed options, sizes: all as docs/architecture.md says"
