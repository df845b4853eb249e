if command -v stress-ng >/dev/null 2>&1; then
  stress-ng --cpu "$DISASTERPIECE_CPU_WORKERS" --cpu-load "$DISASTERPIECE_CPU_LOAD" --timeout "${DISASTERPIECE_SECONDS}s" --quiet &
  pids="$!"
else
  i=0
  while [ "$i" -lt "$DISASTERPIECE_CPU_WORKERS" ]; do
    ( while :; do :; done ) &
    busy=$!
    pids="$pids $busy"
    if [ "$DISASTERPIECE_CPU_LOAD" -lt 100 ]; then
      ( while :; do sleep "$DISASTERPIECE_CPU_ON"; kill -STOP "$busy"; sleep "$DISASTERPIECE_CPU_OFF"; kill -CONT "$busy"; done ) &
      pids="$pids $!"
    fi
    i=$((i + 1))
  done
fi
say "cpuStress: $DISASTERPIECE_CPU_WORKERS worker(s) at $DISASTERPIECE_CPU_LOAD% for ${DISASTERPIECE_SECONDS}s"
