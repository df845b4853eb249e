out=$(kill -s "$DISASTERPIECE_SIGNAL" 1 2>&1) || { say "could not signal the main process of $DISASTERPIECE_TARGET: $out"; exit 3; }
i=0
while [ "$i" -lt 50 ]; do
  kill -0 1 2>/dev/null || exit 0
  sleep 0.1
  i=$((i + 1))
done
say "the main process of $DISASTERPIECE_TARGET is still running after SIG$DISASTERPIECE_SIGNAL: a container's PID 1 receives only the signals it handles, and never KILL from inside the pod (pid_namespaces(7)); use signal TERM"
exit 3
