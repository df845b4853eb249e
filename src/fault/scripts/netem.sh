dev="${DISASTERPIECE_DEVICE:-eth0}"
added=""
fail() {
  [ -n "$added" ] && tc qdisc del dev "$dev" root 2>/dev/null
  say "could not add netem to $dev: $1"
  exit 3
}
clean() {
  trap - TERM INT HUP
  [ -n "${sleeper:-}" ] && kill "$sleeper" 2>/dev/null
  [ -n "$added" ] && tc qdisc del dev "$dev" root 2>/dev/null
  if tc qdisc show dev "$dev" | grep -q netem; then
    say "netem is still on $dev: remove it with 'tc qdisc del dev $dev root' or delete the pod"
    exit 4
  fi
  say "netem removed from $dev"
  exit 0
}
trap clean TERM INT HUP
# $DISASTERPIECE_NETEM and $match are several of tc's arguments, split on purpose; with
# globbing off, nothing else happens to them.
set -f
if [ -n "${DISASTERPIECE_CIDR:-}${DISASTERPIECE_PORT:-}" ]; then
  match=""
  [ -n "${DISASTERPIECE_CIDR:-}" ] && match="$match match ip dst $DISASTERPIECE_CIDR"
  [ -n "${DISASTERPIECE_PORT:-}" ] && match="$match match ip dport $DISASTERPIECE_PORT 0xffff"
  out=$(tc qdisc add dev "$dev" root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1 2>&1) || fail "$out"
  added=1
  # shellcheck disable=SC2086
  out=$(tc qdisc add dev "$dev" parent 1:4 handle 40: netem $DISASTERPIECE_NETEM 2>&1) || fail "$out"
  # shellcheck disable=SC2086
  out=$(tc filter add dev "$dev" parent 1:0 protocol ip prio 1 u32 $match flowid 1:4 2>&1) || fail "$out"
else
  # shellcheck disable=SC2086
  out=$(tc qdisc add dev "$dev" root netem $DISASTERPIECE_NETEM 2>&1) || fail "$out"
  added=1
fi
say "netem $DISASTERPIECE_NETEM on $dev for ${DISASTERPIECE_SECONDS}s"
sleep "$DISASTERPIECE_SECONDS" &
sleeper=$!
wait $sleeper
clean
