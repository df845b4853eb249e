if command -v stress-ng >/dev/null 2>&1; then
  # Its temporary files in /tmp: run as a non-root user from `/` (a container's default), it
  # aborts on a working directory it cannot write.
  stress-ng --temp-path "${TMPDIR:-/tmp}" --cpu "$DISASTERPIECE_CPU_WORKERS" --cpu-load "$DISASTERPIECE_CPU_LOAD" --timeout "$(left)s" --quiet 2>>"$log" &
  pids="$!"
  tools="$!"
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
