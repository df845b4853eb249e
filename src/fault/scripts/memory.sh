i=0
while [ "$i" -lt "$DISASTERPIECE_MEMORY_STEPS" ]; do
  hold=$(left)
  [ "$hold" -gt 0 ] || break
  if command -v stress-ng >/dev/null 2>&1; then
    stress-ng --temp-path "${TMPDIR:-/tmp}" --vm 1 --vm-bytes "$DISASTERPIECE_MEMORY_CHUNK" --vm-keep --timeout "${hold}s" --quiet 2>>"$log" &
  else
    ( { head -c "$DISASTERPIECE_MEMORY_CHUNK" /dev/zero; sleep "$hold"; } | tail > /dev/null ) 2>>"$log" &
  fi
  pids="$pids $!"
  tools="$tools $!"
  i=$((i + 1))
  [ "$i" -lt "$DISASTERPIECE_MEMORY_STEPS" ] && sleep "$DISASTERPIECE_MEMORY_PAUSE"
done
say "memoryStress: holding $DISASTERPIECE_MEMORY until the fault ends ($(left)s left of ${DISASTERPIECE_SECONDS}s)"
