# The pod's sandbox: holds its network namespace, with an eth0 (one end of a veth pair, the
# other end left inside, as no node is wired), and says its host PID when it is ready.
# $1 the pod's state directory.
read -r pid rest < /proc/self/stat
ip link add eth0 type veth peer name eth0-peer 2>/dev/null
ip link set lo up 2>/dev/null
ip link set eth0 up 2>/dev/null
echo "$pid" > "$1/pid"
exec sleep infinity
