sleep "$DISASTERPIECE_SECONDS" &
pids="$pids $!"
wait $!
stop
