i=0
while [ "$i" -lt "$DISASTERPIECE_MEMORY_STEPS" ]; do
  hold=$(left)
  [ "$hold" -gt 0 ] || break
  if command -v stress-ng >/dev/null 2>&1; then
    stress-ng --vm 1 --vm-bytes "$DISASTERPIECE_MEMORY_CHUNK" --vm-keep --timeout "${hold}s" --quiet &
  else
    ( { head -c "$DISASTERPIECE_MEMORY_CHUNK" /dev/zero; sleep "$hold"; } | tail > /dev/null ) &
  fi
  pids="$pids $!"
  i=$((i + 1))
  [ "$i" -lt "$DISASTERPIECE_MEMORY_STEPS" ] && sleep "$DISASTERPIECE_MEMORY_PAUSE"
done
say "memoryStress: holding $DISASTERPIECE_MEMORY until the fault ends ($(left)s left of ${DISASTERPIECE_SECONDS}s)"
