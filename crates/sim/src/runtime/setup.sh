# Makes a container of the simulator's runtime, as root in the container's new mount
# namespace (and in its PID namespace), then runs its command as its user.
# $1 the container's state directory, $2 its uid, $3 its gid, $4 setpriv's options (split on
# purpose), the rest its command. Its own names start with __dp_: the container's environment
# is already set, and the command must get it unchanged.
set -eu
__dp_dir=$1 __dp_uid=$2 __dp_gid=$3 __dp_opts=$4
shift 4
# Its own tools from the machine's PATH; the command gets the container's.
__dp_path=$PATH
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
__dp_setpriv=$(command -v setpriv)
# The PID the host sees (this /proc is still the host's): the runtime enters the container's
# namespaces through it for exec.
read -r __dp_pid __dp_rest < /proc/self/stat
# /proc of the PID namespace the container lives in.
mount -t proc proc /proc
# A /dev of its own, as a runtime makes one, with the termination log bound to a host file.
mount -t tmpfs -o mode=755,size=1m tmpfs "$__dp_dir/dev"
for __dp_n in null zero full random urandom tty; do
  : > "$__dp_dir/dev/$__dp_n"
  mount --bind "/dev/$__dp_n" "$__dp_dir/dev/$__dp_n"
done
ln -s /proc/self/fd "$__dp_dir/dev/fd"
ln -s /proc/self/fd/0 "$__dp_dir/dev/stdin"
ln -s /proc/self/fd/1 "$__dp_dir/dev/stdout"
ln -s /proc/self/fd/2 "$__dp_dir/dev/stderr"
mkdir "$__dp_dir/dev/shm"
: > "$__dp_dir/dev/termination-log"
mount --bind "$__dp_dir/termination-log" "$__dp_dir/dev/termination-log"
mount --move "$__dp_dir/dev" /dev
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
echo "$__dp_pid" > "$__dp_dir/pid"
# A private /tmp (last: the state directory may lie under the host's /tmp).
mount -t tmpfs -o mode=1777,size=1g tmpfs /tmp
cd /
PATH=$__dp_path
unset __dp_dir __dp_rest __dp_n __dp_pid __dp_path
# The parent-death signal again: a change of user clears it, and nothing may outlive the
# simulator.
# shellcheck disable=SC2086
exec "$__dp_setpriv" --reuid "$__dp_uid" --regid "$__dp_gid" --clear-groups --pdeathsig KILL $__dp_opts -- "$@"
