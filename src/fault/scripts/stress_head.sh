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
