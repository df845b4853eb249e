sleep "$(left)" &
pids="$pids $!"
wait $!
stop
