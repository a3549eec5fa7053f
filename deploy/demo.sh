#!/usr/bin/env bash
# deploy/demo.sh — vm-informant live, on an embedded default:
# a throw-away Postgres, the real daemon, agent-sim as the autoscaler and a
# workload that grows memory in steps.  Uses the real cgroup v2 memory
# controller when the machine has one, a directory imitating cgroupfs
# otherwise.  Installs and builds what is missing first (Debian, as root).
#
#   deploy/demo.sh [--duration SECONDS] [--protocol monitor|informant] [--vm]
#
# --duration  how long the story runs (default 60); it ends by itself
# --protocol  what agent-sim speaks: monitor (default; the websocket protocol
#             of autoscaler-agents since v0.18.0) or informant (HTTP, before)
# --vm        the same story inside a real QEMU guest (tests/vm/run.sh):
#             hot-plugged memory, a real cgroup v2 and a real freeze
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

for arg in "$@"; do
	case $arg in
	-h | --help)
		sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	--vm)
		# The real-VM end-to-end run tells the story phase by phase.
		exec "$top/tests/vm/run.sh"
		;;
	esac
done

"$top/deploy/bootstrap.sh" build
exec python3 "$top/deploy/demo.py" --build "$top/build" "$@"
