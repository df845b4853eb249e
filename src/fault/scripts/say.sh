say() { printf "%s" "$1" > /dev/termination-log 2>/dev/null; echo "disasterpiece: $1"; }
echo $$ > "${DISASTERPIECE_PID_FILE:-/tmp/disasterpiece.pid}"
if [ -n "${DISASTERPIECE_NOT_AFTER:-}" ]; then
  left=$((DISASTERPIECE_NOT_AFTER - $(date +%s)))
  if [ "$left" -le 0 ]; then say "started after its exercise's window ended; nothing done"; exit 3; fi
  [ "$left" -lt "$DISASTERPIECE_SECONDS" ] && DISASTERPIECE_SECONDS=$left
fi
