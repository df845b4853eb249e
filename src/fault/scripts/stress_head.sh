# When the fault ends, a ramp included: every hold lasts until then, never longer.
end=$(($(date +%s) + DISASTERPIECE_SECONDS))
left() { l=$((end - $(date +%s))); [ "$l" -gt 0 ] || l=0; echo "$l"; }
pids=""
stop() {
  trap - TERM INT HUP
  # $pids is a list of PIDs, split on purpose.
  # shellcheck disable=SC2086
  if [ -n "$pids" ]; then kill $pids 2>/dev/null; kill -CONT $pids 2>/dev/null; fi
  say "$DISASTERPIECE_FAULT stopped"
  exit 0
}
trap stop TERM INT HUP
# The stressors (stress-ng, the memory holders): each must still be alive a moment after it
# started, else the fault is not in place and the script says why (exit 3).
tools=""
log="${TMPDIR:-/tmp}/disasterpiece-stress.$$"
alive() {
  sleep 0.5
  for p in $tools; do
    if ! kill -0 "$p" 2>/dev/null; then
      wait "$p"
      code=$?
      # $pids is a list of PIDs, split on purpose.
      # shellcheck disable=SC2086
      [ -n "$pids" ] && kill $pids 2>/dev/null
      say "$DISASTERPIECE_FAULT: its stressor ended at once (exit $code): $(tail -c 300 "$log" 2>/dev/null)"
      exit 3
    fi
  done
}
