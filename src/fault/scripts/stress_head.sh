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
