[ -z "$tools" ] || alive
sleep "$(left)" &
pids="$pids $!"
wait $!
stop
