i=0
while [ "$i" -lt "$DISASTERPIECE_MEMORY_STEPS" ]; do
  if command -v stress-ng >/dev/null 2>&1; then
    stress-ng --vm 1 --vm-bytes "$DISASTERPIECE_MEMORY_CHUNK" --vm-keep --timeout "${DISASTERPIECE_SECONDS}s" --quiet &
  else
    ( { head -c "$DISASTERPIECE_MEMORY_CHUNK" /dev/zero; sleep "$DISASTERPIECE_SECONDS"; } | tail > /dev/null ) &
  fi
  pids="$pids $!"
  i=$((i + 1))
  [ "$i" -lt "$DISASTERPIECE_MEMORY_STEPS" ] && sleep "$DISASTERPIECE_MEMORY_PAUSE"
done
say "memoryStress: holding $DISASTERPIECE_MEMORY for ${DISASTERPIECE_SECONDS}s"
