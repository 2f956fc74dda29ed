#!/bin/bash
# systemctl — a stand-in for systemd's systemctl, for the ferry lab.
#
# Lab hosts are namespaces, not booted machines: no systemd runs in them.
# This script replaces systemctl there so that deploy tools (ferry's systemd
# module, Ansible's systemd module) can manage services as on a real host.
# It really runs the services:
#
#   - units are read from /etc/systemd/system/NAME.service ([Service]
#     ExecStart=, ExecStartPre=, ExecReload=, ExecStop=, User=, Group=,
#     Environment=, EnvironmentFile=, WorkingDirectory=, Type=simple|exec|
#     notify|oneshot|forking, PIDFile=, Restart=, RestartSec=, KillSignal=,
#     TimeoutStopSec=, StandardOutput=append:|file:; [Install] WantedBy=);
#   - a service runs in its own session (setsid) under a small supervisor
#     that records its exit status (so a crash shows as "failed") and applies
#     Restart=; its MainPID is the ExecStart process itself. nohup is not
#     used: it would make SIGHUP (reload) be ignored;
#   - state lives in /run/ferry-systemctl/NAME.service/ (pid files, state,
#     a copy of the unit as started), output in /var/log/ferry-systemctl/;
#   - stop sends KillSignal (SIGTERM) to the main process, waits up to
#     TimeoutStopSec (default 10s here, 90s in systemd), then SIGKILLs the
#     service's process group;
#   - like systemd, a running unit keeps the configuration it was started
#     with: if its file changes on disk, commands warn and show reports
#     NeedDaemonReload=yes until daemon-reload.
#
# Commands: start stop restart try-restart reload reload-or-restart
# is-active is-failed is-enabled enable disable mask unmask daemon-reload
# daemon-reexec reset-failed status show cat kill list-units list-unit-files.
# Flags: -q/--quiet --no-pager --no-block --no-legend --plain -l/--full -a/--all
# --now --value -p/--property -n/--lines -s/--signal --kill-who --system.
# Exit codes follow systemd: is-active/status 0 active, 3 not active,
# status 4 no such unit.
#
# For tests outside a lab, FERRY_SYSTEMCTL_UNIT_DIR, FERRY_SYSTEMCTL_STATE_DIR
# and FERRY_SYSTEMCTL_LOG_DIR move the three directories (and lift the root
# check).
set -uo pipefail

UNIT_DIR=${FERRY_SYSTEMCTL_UNIT_DIR:-/etc/systemd/system}
STATE_DIR=${FERRY_SYSTEMCTL_STATE_DIR:-/run/ferry-systemctl}
LOG_DIR=${FERRY_SYSTEMCTL_LOG_DIR:-/var/log/ferry-systemctl}
VERSION="252 (ferry-lab stand-in)"

QUIET=0 NOW=0 VALUE=0 ALL=0 LINES=10 SIGNAL=TERM KILL_WHO=all
PROPS=()

say() { [ "$QUIET" = 1 ] || printf '%s\n' "$*"; }
err() { printf '%s\n' "$*" >&2; }

# The helpers below avoid forking where they can: lab hosts share a few
# cores with whole test suites, and every fork shows in ferry's timings.

# readf VAR FILE [DEFAULT]: the first line of FILE into VAR.
readf() {
	local _l=""
	if [ -r "$2" ]; then
		IFS= read -r _l <"$2" || true
	else
		_l=${3:-}
	fi
	printf -v "$1" '%s' "$_l"
}

# slurp VAR FILE: the whole of FILE into VAR.
slurp() {
	local _c=""
	[ -r "$2" ] && { IFS= read -r -d '' _c <"$2" || true; }
	printf -v "$1" '%s' "$_c"
}

# nap SECONDS: sleep without forking (read with a timeout on a pipe that
# never gets data).
NAPFD=""
nap() {
	if [ -z "$NAPFD" ]; then exec {NAPFD}<> <(:); fi
	read -r -t "$1" -u "$NAPFD" _ || true
}

# no_nap: close nap's pipe before starting a process that outlives us.
no_nap() {
	if [ -n "$NAPFD" ]; then
		exec {NAPFD}>&-
		NAPFD=""
	fi
}

# pwent USER: PW_UID, PW_GID, PW_HOME, PW_SHELL from /etc/passwd.
pwent() {
	local n x uid gid g home shell
	PW_UID="" PW_GID="" PW_HOME="" PW_SHELL=""
	while IFS=: read -r n x uid gid g home shell; do
		if [ "$n" = "$1" ] || [ "$uid" = "$1" ]; then
			PW_UID=$uid PW_GID=$gid PW_HOME=$home PW_SHELL=$shell
			return 0
		fi
	done </etc/passwd
	return 1
}

# ---- units -----------------------------------------------------------------

# unit_name NAME: NAME.service unless it already has a unit suffix, in UNIT.
unit_name() {
	case $1 in
	*.service | *.socket | *.timer | *.target | *.mount | *.path | *.slice | *.scope) UNIT=$1 ;;
	*) UNIT=$1.service ;;
	esac
}

# split_words STRING: systemd-style word splitting ("..." and '...' group,
# backslash escapes) into the WORDS array. No shell expansion happens.
split_words() {
	local s=$1 w="" q="" c i have=0
	WORDS=()
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		if [ -n "$q" ]; then
			if [ "$c" = "$q" ]; then
				q=""
			elif [ "$c" = '\' ] && [ "$q" = '"' ]; then
				i=$((i + 1))
				w+=${s:i:1}
			else
				w+=$c
			fi
			continue
		fi
		case $c in
		'"' | "'") q=$c have=1 ;;
		'\')
			i=$((i + 1))
			w+=${s:i:1}
			have=1
			;;
		' ' | $'\t')
			if [ "$have" = 1 ]; then WORDS+=("$w"); fi
			w="" have=0
			;;
		*) w+=$c have=1 ;;
		esac
	done
	if [ "$have" = 1 ]; then WORDS+=("$w"); fi
}

# parse_unit FILE: fill the U_* globals from a unit file.
parse_unit() {
	local file=$1 section="" line key val
	U_DESC="" U_EXECSTART="" U_EXECRELOAD="" U_EXECSTOP="" U_USER="" U_GROUP="" U_WD=""
	U_TYPE=simple U_RESTART=no U_RESTARTSEC=0.1 U_KILLSIGNAL=TERM U_TIMEOUTSTOP=10s U_PIDFILE=""
	U_REMAIN=no U_STDOUT="" U_STDERR="" U_HAS_INSTALL=0
	U_ENV=() U_ENVFILES=() U_PRE=() U_WANTEDBY=()
	local cont=""
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		if [ -n "$cont" ]; then
			line="$cont $line"
			cont=""
		fi
		case $line in
		*\\)
			cont=${line%\\}
			continue
			;;
		esac
		line=${line#"${line%%[![:space:]]*}"}
		case $line in
		'' | '#'* | ';'*) continue ;;
		'['*']')
			section=${line:1:${#line}-2}
			[ "$section" = Install ] && U_HAS_INSTALL=1
			continue
			;;
		*=*) ;;
		*) continue ;;
		esac
		key=${line%%=*} val=${line#*=}
		key=${key%"${key##*[![:space:]]}"}
		val=${val#"${val%%[![:space:]]*}"}
		case $section.$key in
		Unit.Description) U_DESC=$val ;;
		Service.ExecStart) U_EXECSTART=$val ;;
		Service.ExecStartPre) [ -n "$val" ] && U_PRE+=("$val") ;;
		Service.ExecReload) U_EXECRELOAD=$val ;;
		Service.ExecStop) U_EXECSTOP=$val ;;
		Service.User) U_USER=$val ;;
		Service.Group) U_GROUP=$val ;;
		Service.WorkingDirectory) U_WD=$val ;;
		Service.Type) U_TYPE=$val ;;
		Service.Restart) U_RESTART=$val ;;
		Service.RestartSec) U_RESTARTSEC=$val ;;
		Service.KillSignal) U_KILLSIGNAL=${val#SIG} ;;
		Service.TimeoutStopSec | Service.TimeoutSec) U_TIMEOUTSTOP=$val ;;
		Service.PIDFile) U_PIDFILE=$val ;;
		Service.RemainAfterExit) U_REMAIN=$val ;;
		Service.StandardOutput) U_STDOUT=$val ;;
		Service.StandardError) U_STDERR=$val ;;
		Service.Environment)
			if [ -z "$val" ]; then
				U_ENV=()
			else
				split_words "$val"
				U_ENV+=("${WORDS[@]}")
			fi
			;;
		Service.EnvironmentFile) U_ENVFILES+=("$val") ;;
		Install.WantedBy | Install.RequiredBy)
			split_words "$val"
			U_WANTEDBY+=("${WORDS[@]}")
			;;
		esac
	done <"$file"
}

# load UNIT: find the unit and its configuration. Sets U_PATH (the file on
# disk), U_LOAD (loaded, not-found, masked), U_SOURCE (the file whose
# configuration applies: the copy taken at start while the unit runs) and
# U_NEEDRELOAD.
load() {
	local unit=$1 sd=$STATE_DIR/$1
	U_PATH=$UNIT_DIR/$unit U_LOAD=loaded U_SOURCE="" U_NEEDRELOAD=no
	if [ -L "$U_PATH" ] && [ "$(readlink "$U_PATH")" = /dev/null ]; then
		U_LOAD=masked
	elif [ ! -f "$U_PATH" ] || [ "${unit%.service}" = "$unit" ]; then
		U_LOAD=not-found U_PATH=""
	fi
	state "$unit"
	if [ -f "$sd/unit" ] && [ "$ACTIVE" != inactive ] && [ "$ACTIVE" != failed ]; then
		U_SOURCE=$sd/unit
		local a b
		slurp a "$sd/unit"
		slurp b "$U_PATH"
		if [ "$U_LOAD" != loaded ] || [ "$a" != "$b" ]; then
			U_NEEDRELOAD=yes
		fi
		[ "$U_LOAD" = not-found ] && U_LOAD=loaded
	elif [ "$U_LOAD" = loaded ]; then
		U_SOURCE=$U_PATH
	fi
	if [ -n "$U_SOURCE" ]; then
		parse_unit "$U_SOURCE"
	else
		parse_unit /dev/null
	fi
}

warn_reload() {
	if [ "$U_NEEDRELOAD" = yes ]; then
		err "Warning: The unit file, source configuration file or drop-ins of $1 changed on disk. Run 'systemctl daemon-reload' to reload units."
	fi
}

# ---- processes --------------------------------------------------------------

# starttime PID: the process start time in STT (to tell a PID from a
# reused one); fails for a dead or zombie process.
starttime() {
	local s
	STT=""
	{ IFS= read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	[ "$1" != Z ] || return 1
	STT=${20}
}

# alive FILE: the process recorded in FILE ("pid starttime") still runs;
# sets PID.
alive() {
	local st
	PID=0
	[ -f "$1" ] || return 1
	read -r PID st <"$1" 2>/dev/null || return 1
	[ -n "$PID" ] && [ "$PID" -gt 0 ] 2>/dev/null || {
		PID=0
		return 1
	}
	starttime "$PID" && [ "$STT" = "$st" ] && return 0
	PID=0
	return 1
}

record_pid() { # FILE PID
	starttime "$2"
	printf '%s %s\n' "$2" "$STT" >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# state UNIT: ACTIVE, SUB, MAINPID, RESULT, STATUS of the unit.
state() {
	local sd=$STATE_DIR/$1 saved=""
	ACTIVE=inactive SUB=dead MAINPID=0 RESULT=success STATUS=0
	readf RESULT "$sd/result" success
	readf STATUS "$sd/exit_status" 0
	readf saved "$sd/state"
	if alive "$sd/main.pid"; then
		MAINPID=$PID
		if [ -e "$sd/stopping" ]; then
			ACTIVE=deactivating SUB=stop-sigterm
		else
			ACTIVE=active SUB=running
		fi
		return
	fi
	case $saved in
	exited) ACTIVE=active SUB=exited ;;
	failed) ACTIVE=failed SUB=failed ;;
	activating | active)
		if alive "$sd/supervisor.pid"; then
			ACTIVE=activating SUB=start
		fi
		;;
	esac
}

# millis VALUE: a systemd time span ("90", "5s", "1min 30s", "500ms",
# "infinity") in milliseconds, in MS.
millis() {
	local v=$1 total=0 n u
	[ "$v" = infinity ] && {
		MS=3600000
		return
	}
	while [[ $v =~ ^[[:space:]]*([0-9]+(\.[0-9]+)?)[[:space:]]*([a-z]*)(.*)$ ]]; do
		n=${BASH_REMATCH[1]} u=${BASH_REMATCH[3]} v=${BASH_REMATCH[4]}
		local f=1000
		case $u in
		ms | msec) f=1 ;;
		'' | s | sec | second | seconds) f=1000 ;;
		m | min | minute | minutes) f=60000 ;;
		h | hr | hour | hours) f=3600000 ;;
		us | usec) f=0 ;;
		esac
		total=$((total + ${n%.*} * f))
		if [[ $n == *.* ]]; then
			local frac=${n#*.}000
			total=$((total + 10#${frac:0:3} * f / 1000))
		fi
	done
	MS=$total
}

# service_env: the environment of the service, in ENVV.
service_env() {
	local f line home=/ shell=/bin/sh
	ENVV=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "LANG=${LANG:-C.UTF-8}")
	if [ -n "$U_USER" ]; then
		pwent "$U_USER" && home=$PW_HOME shell=$PW_SHELL
		ENVV+=("USER=$U_USER" "LOGNAME=$U_USER" "HOME=${home:-/}" "SHELL=${shell:-/bin/sh}")
	fi
	local id
	printf -v id '%04x' $RANDOM $RANDOM $RANDOM $RANDOM $RANDOM $RANDOM $RANDOM $RANDOM
	ENVV+=("INVOCATION_ID=$id")
	for f in "${U_ENVFILES[@]}"; do
		local optional=0
		if [ "${f#-}" != "$f" ]; then
			optional=1
			f=${f#-}
		fi
		if [ ! -r "$f" ]; then
			[ "$optional" = 1 ] && continue
			err "Failed to load environment files: $f: No such file or directory"
			return 1
		fi
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line#"${line%%[![:space:]]*}"}
			case $line in '' | '#'* | ';'*) continue ;; esac
			line=${line#export }
			local k=${line%%=*} v=${line#*=}
			v=${v#\"} v=${v%\"} v=${v#\'} v=${v%\'}
			ENVV+=("$k=$v")
		done <"$f"
	done
	ENVV+=("${U_ENV[@]}")
}

# as_user: the command prefix that drops to User=/Group= (when root).
as_user() {
	ASUSER=()
	if [ -n "$U_USER" ] && [ "$EUID" = 0 ] && [ "$U_USER" != root ] && [ "$U_USER" != 0 ]; then
		if ! pwent "$U_USER"; then
			err "Failed to determine user credentials: No such process ($U_USER)"
			return 1
		fi
		ASUSER=(setpriv "--reuid=$PW_UID" "--regid=${U_GROUP:-$PW_GID}" --init-groups --)
	fi
}

# strip_prefix CMD: CMD without systemd's ExecStart prefixes (@ - : + !),
# in CMDLINE.
strip_prefix() {
	CMDLINE=$1
	while [[ $CMDLINE == [@\-:+!]* ]]; do CMDLINE=${CMDLINE:1}; done
}

output_target() { # VALUE DEFAULT
	case $1 in
	append:*) printf '%s' "${1#append:}" ;;
	file:*) printf '%s' "${1#file:}" ;;
	null) printf /dev/null ;;
	*) printf '%s' "$2" ;;
	esac
}

# exec_cmd CMD: exec one Exec*= line as the service (cwd, env, user).
exec_cmd() {
	local cmd
	strip_prefix "$1"
	cmd=$CMDLINE
	if [ -n "$U_WD" ]; then
		cd "${U_WD#-}" 2>/dev/null || {
			[ "${U_WD#-}" != "$U_WD" ] || {
				echo "Changing to the requested working directory failed: $U_WD" >&2
				exit 200
			}
		}
	elif [ -n "$U_USER" ]; then
		cd / || exit 200
	fi
	exec env -i "${ENVV[@]}" "${ASUSER[@]}" /bin/bash -c "exec $cmd"
}

# ---- commands ------------------------------------------------------------------

need_root() {
	if [ "$EUID" != 0 ] && [ -z "${FERRY_SYSTEMCTL_UNIT_DIR:-}" ]; then
		err "Failed to $1 $2: Access denied"
		err "See system logs and 'systemctl status $2' for details."
		exit 4
	fi
}

lock_unit() {
	[ -d "$STATE_DIR/$1" ] || mkdir -p "$STATE_DIR/$1"
	[ -d "$LOG_DIR" ] || mkdir -p "$LOG_DIR"
	exec 9>"$STATE_DIR/$1.lock"
	flock -w 120 9 || {
		err "Failed to lock $1"
		exit 1
	}
}

job_failed() {
	err "Job for $1 failed because the control process exited with error code."
	err "See \"systemctl status $1\" and \"cat $LOG_DIR/$1.log\" for details."
}

cmd_start() {
	local unit=$1 sd=$STATE_DIR/$1 log pre i
	need_root start "$unit"
	no_nap
	lock_unit "$unit"
	load "$unit"
	case $U_LOAD in
	not-found)
		err "Failed to start $unit: Unit $unit not found."
		return 5
		;;
	masked)
		err "Failed to start $unit: Unit $unit is masked."
		return 1
		;;
	esac
	warn_reload "$unit"
	case $ACTIVE in active | activating | deactivating) return 0 ;; esac
	if [ -z "$U_EXECSTART" ]; then
		err "Failed to start $unit: Unit $unit has a bad unit file setting."
		return 1
	fi
	rm -f "$sd/stopping" "$sd/main.pid" "$sd/supervisor.pid" "$sd/exit_status" "$sd/nrestarts"
	cp -f "$U_PATH" "$sd/unit"
	echo success >"$sd/result"
	printf '%(%a %Y-%m-%d %H:%M:%S %Z)T\n' -1 >"$sd/since"
	log=$LOG_DIR/$unit.log
	service_env || {
		echo failed >"$sd/state"
		echo resources >"$sd/result"
		job_failed "$unit"
		return 1
	}
	as_user || {
		echo failed >"$sd/state"
		echo exit-code >"$sd/result"
		job_failed "$unit"
		return 1
	}
	for pre in "${U_PRE[@]}"; do
		(exec_cmd "$pre") </dev/null >>"$log" 2>&1 9>&-
		i=$?
		if [ "$i" != 0 ] && [ "${pre#-}" = "$pre" ]; then
			echo "$i" >"$sd/exit_status"
			echo failed >"$sd/state"
			echo exit-code >"$sd/result"
			job_failed "$unit"
			return 1
		fi
	done
	case $U_TYPE in
	oneshot)
		echo activating >"$sd/state"
		(exec_cmd "$U_EXECSTART") </dev/null >>"$log" 2>&1 9>&-
		i=$?
		echo "$i" >"$sd/exit_status"
		if [ "$i" != 0 ]; then
			echo failed >"$sd/state"
			echo exit-code >"$sd/result"
			job_failed "$unit"
			return 1
		fi
		if [[ $U_REMAIN == @(yes|true|1|on) ]]; then echo exited >"$sd/state"; else echo inactive >"$sd/state"; fi
		return 0
		;;
	forking)
		(exec_cmd "$U_EXECSTART") </dev/null >>"$log" 2>&1 9>&-
		i=$?
		if [ "$i" != 0 ]; then
			echo "$i" >"$sd/exit_status"
			echo failed >"$sd/state"
			echo exit-code >"$sd/result"
			job_failed "$unit"
			return 1
		fi
		for ((i = 0; i < 100; i++)); do
			if [ -n "$U_PIDFILE" ] && [ -s "$U_PIDFILE" ]; then
				readf i "$U_PIDFILE"
				record_pid "$sd/main.pid" "${i//[!0-9]/}"
				break
			fi
			nap 0.02
		done
		echo active >"$sd/state"
		return 0
		;;
	esac
	echo activating >"$sd/state"
	no_nap
	setsid "$(readlink -f "${BASH_SOURCE[0]}")" __supervise "$unit" </dev/null >>"$log" 2>&1 9>&- &
	# Like Type=exec: report a service that could not even be executed.
	for ((i = 0; i < 250; i++)); do
		[ -f "$sd/main.pid" ] && break
		nap 0.02
	done
	for ((i = 0; i < 5; i++)); do
		state "$unit"
		[ "$ACTIVE" = failed ] && break
		nap 0.02
	done
	state "$unit"
	if [ "$ACTIVE" = failed ]; then
		job_failed "$unit"
		return 1
	fi
	return 0
}

# supervise UNIT: runs in the service's session; starts the main process,
# records its PID and exit status, applies Restart=.
cmd_supervise() {
	local unit=$1 sd=$STATE_DIR/$1 pid rc n=0 out errout
	parse_unit "$sd/unit"
	service_env || exit 1
	as_user || exit 1
	record_pid "$sd/supervisor.pid" $$
	out=$(output_target "$U_STDOUT" "$LOG_DIR/$unit.log")
	errout=$(output_target "$U_STDERR" "$out")
	while :; do
		no_nap
		(exec_cmd "$U_EXECSTART") </dev/null >>"$out" 2>>"$errout" &
		pid=$!
		record_pid "$sd/main.pid" "$pid"
		echo active >"$sd/state"
		wait "$pid"
		rc=$?
		rm -f "$sd/main.pid"
		echo "$rc" >"$sd/exit_status"
		if [ -e "$sd/stopping" ]; then
			echo inactive >"$sd/state"
			break
		fi
		local clean=0
		case $rc in 0 | 129 | 130 | 141 | 143) clean=1 ;; esac
		if [ "$clean" = 1 ]; then
			echo success >"$sd/result"
		elif [ "$rc" -gt 128 ]; then
			echo signal >"$sd/result"
		else
			echo exit-code >"$sd/result"
		fi
		if [[ $U_RESTART == always ]] || { [ "$clean" = 0 ] && [[ $U_RESTART == @(on-failure|on-abnormal|on-abort) ]]; }; then
			n=$((n + 1))
			echo "$n" >"$sd/nrestarts"
			if [ "$n" -le 5 ]; then
				echo activating >"$sd/state"
				local ms
				millis "$U_RESTARTSEC"
				ms=$MS
				printf -v ms '%d.%03d' $((ms / 1000)) $((ms % 1000))
				nap "$ms"
				[ -e "$sd/stopping" ] && {
					echo inactive >"$sd/state"
					break
				}
				continue
			fi
			echo start-limit-hit >"$sd/result"
			clean=0
		fi
		if [ "$clean" = 1 ]; then echo inactive >"$sd/state"; else echo failed >"$sd/state"; fi
		break
	done
	rm -f "$sd/supervisor.pid"
}

cmd_stop() {
	local unit=$1 sd=$STATE_DIR/$1 ms i sup=0
	need_root stop "$unit"
	lock_unit "$unit"
	load "$unit"
	if [ "$U_LOAD" = not-found ] && [ ! -d "$sd" ]; then
		err "Failed to stop $unit: Unit $unit not loaded."
		return 5
	fi
	warn_reload "$unit"
	alive "$sd/supervisor.pid" && sup=$PID
	if [ "$MAINPID" = 0 ] && [ "$sup" = 0 ]; then
		[ "$ACTIVE" = active ] && echo inactive >"$sd/state" # oneshot, RemainAfterExit
		return 0
	fi
	touch "$sd/stopping"
	if [ -n "$U_EXECSTOP" ] && [ "$MAINPID" != 0 ]; then
		service_env && as_user && ENVV+=("MAINPID=$MAINPID") &&
			(exec_cmd "$U_EXECSTOP") </dev/null >>"$LOG_DIR/$unit.log" 2>&1 9>&-
	fi
	[ "$MAINPID" != 0 ] && kill -s "$U_KILLSIGNAL" "$MAINPID" 2>/dev/null
	millis "$U_TIMEOUTSTOP"
	ms=$MS
	for ((i = 0; i < ms / 20; i++)); do
		alive "$sd/main.pid" || break
		nap 0.02
	done
	if alive "$sd/main.pid"; then
		kill -KILL "$PID" 2>/dev/null
		echo timeout >"$sd/result"
	fi
	# The supervisor notes the exit and leaves; then nothing of the service
	# may remain in its process group.
	for ((i = 0; i < 100; i++)); do
		alive "$sd/supervisor.pid" || break
		nap 0.02
	done
	if [ "$sup" != 0 ]; then
		kill -KILL -- "-$sup" 2>/dev/null
	fi
	rm -f "$sd/stopping" "$sd/main.pid" "$sd/supervisor.pid"
	readf i "$sd/result"
	if [ "$i" = timeout ]; then
		echo failed >"$sd/state"
	else
		echo inactive >"$sd/state"
	fi
	return 0
}

cmd_reload() {
	local unit=$1 sd=$STATE_DIR/$1
	need_root reload "$unit"
	lock_unit "$unit"
	load "$unit"
	if [ "$U_LOAD" = not-found ]; then
		err "Failed to reload $unit: Unit $unit not found."
		return 5
	fi
	warn_reload "$unit"
	if [ "$ACTIVE" != active ]; then
		err "Failed to reload $unit: Unit $unit is not active."
		return 1
	fi
	if [ -n "$U_EXECRELOAD" ]; then
		service_env && as_user || return 1
		ENVV+=("MAINPID=$MAINPID")
		(exec_cmd "$U_EXECRELOAD") </dev/null >>"$LOG_DIR/$unit.log" 2>&1 9>&- || {
			job_failed "$unit"
			return 1
		}
	elif [ "$MAINPID" != 0 ]; then
		kill -HUP "$MAINPID"
	fi
}

cmd_restart() {
	cmd_stop "$1" || return
	exec 9>&-
	cmd_start "$1"
}

# is_enabled_state UNIT: the unit file state in ENABLED ("" when there is no
# unit). enabled_state does the same for the unit load has just loaded.
is_enabled_state() {
	load "$1"
	enabled_state "$1"
}

enabled_state() {
	local w
	ENABLED=""
	case $U_LOAD in
	masked)
		ENABLED=masked
		return
		;;
	not-found) return ;;
	esac
	for w in "$UNIT_DIR"/*.wants/"$1" "$UNIT_DIR"/*.requires/"$1"; do
		if [ -L "$w" ]; then
			ENABLED=enabled
			return
		fi
	done
	if [ "$U_HAS_INSTALL" = 1 ] && [ "${#U_WANTEDBY[@]}" -gt 0 ]; then ENABLED=disabled; else ENABLED=static; fi
}

cmd_enable() {
	local unit=$1 t
	need_root enable "$unit"
	load "$unit"
	if [ "$U_LOAD" != loaded ]; then
		err "Failed to enable unit: Unit file $unit does not exist."
		return 1
	fi
	if [ "${#U_WANTEDBY[@]}" = 0 ]; then
		err "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,"
		err "Alias= settings in the [Install] section, and DefaultInstance= for template"
		err "units). This means they are not meant to be enabled or disabled using systemctl."
	fi
	for t in "${U_WANTEDBY[@]}"; do
		mkdir -p "$UNIT_DIR/$t.wants"
		if [ ! -L "$UNIT_DIR/$t.wants/$unit" ]; then
			ln -sf "$U_PATH" "$UNIT_DIR/$t.wants/$unit"
			err "Created symlink $UNIT_DIR/$t.wants/$unit → $U_PATH."
		fi
	done
	if [ "$NOW" = 1 ]; then cmd_start "$unit"; fi
}

cmd_disable() {
	local unit=$1 w
	need_root disable "$unit"
	for w in "$UNIT_DIR"/*.wants/"$unit" "$UNIT_DIR"/*.requires/"$unit"; do
		if [ -L "$w" ]; then
			rm -f "$w"
			err "Removed \"$w\"."
		fi
	done
	if [ "$NOW" = 1 ]; then cmd_stop "$unit"; fi
}

cmd_mask() {
	local unit=$1
	need_root mask "$unit"
	if [ -f "$UNIT_DIR/$unit" ] && [ ! -L "$UNIT_DIR/$unit" ]; then
		err "Failed to mask unit: File $UNIT_DIR/$unit already exists."
		return 1
	fi
	ln -sf /dev/null "$UNIT_DIR/$unit"
	err "Created symlink $UNIT_DIR/$unit → /dev/null."
}

cmd_unmask() {
	local unit=$1
	need_root unmask "$unit"
	if [ -L "$UNIT_DIR/$unit" ] && [ "$(readlink "$UNIT_DIR/$unit")" = /dev/null ]; then
		rm -f "$UNIT_DIR/$unit"
		err "Removed \"$UNIT_DIR/$unit\"."
	fi
}

cmd_daemon_reload() {
	local d unit
	need_root daemon-reload ""
	[ -d "$STATE_DIR" ] || return 0
	for d in "$STATE_DIR"/*/; do
		[ -d "$d" ] || continue
		unit=${d%/}
		unit=${unit##*/}
		if [ -f "$UNIT_DIR/$unit" ]; then
			cp -f "$UNIT_DIR/$unit" "$d/unit" 2>/dev/null
		fi
	done
	return 0
}

# show_props UNIT: every property, KEY=VALUE, in PROPLINES.
show_props() {
	local unit=$1 sd=$STATE_DIR/$1 since="" ufs nr=0 exec="" sig=15
	load "$unit"
	enabled_state "$unit"
	ufs=$ENABLED
	[ "$ACTIVE" != inactive ] && readf since "$sd/since"
	readf nr "$sd/nrestarts" 0
	if [ -n "$U_EXECSTART" ]; then
		strip_prefix "$U_EXECSTART"
		exec="{ path=${CMDLINE%% *} ; argv[]=$CMDLINE ; }"
	fi
	case $U_KILLSIGNAL in
	HUP) sig=1 ;; INT) sig=2 ;; QUIT) sig=3 ;; KILL) sig=9 ;; USR1) sig=10 ;; USR2) sig=12 ;; TERM) sig=15 ;;
	*) sig=$(kill -l "$U_KILLSIGNAL" 2>/dev/null || echo 15) ;;
	esac
	PROPLINES=(
		"Type=$U_TYPE"
		"Restart=$U_RESTART"
		"PIDFile=$U_PIDFILE"
		"MainPID=$MAINPID"
		"ExecMainPID=$MAINPID"
		"ExecMainStatus=$STATUS"
		"ExecMainStartTimestamp=$since"
		"ExecStart=$exec"
		"Result=$RESULT"
		"NRestarts=$nr"
		"User=$U_USER"
		"Group=$U_GROUP"
		"WorkingDirectory=$U_WD"
		"Environment=${U_ENV[*]}"
		"KillSignal=$sig"
		"Id=$unit"
		"Names=$unit"
		"Description=${U_DESC:-$unit}"
		"LoadState=$U_LOAD"
		"ActiveState=$ACTIVE"
		"SubState=$SUB"
		"FragmentPath=$U_PATH"
		"UnitFileState=$ufs"
		"UnitFilePreset=enabled"
		"ActiveEnterTimestamp=$since"
		"StateChangeTimestamp=$since"
		"CanStart=yes"
		"CanStop=yes"
		"CanReload=yes"
		"NeedDaemonReload=$U_NEEDRELOAD"
	)
	if [ "$U_LOAD" = not-found ]; then
		PROPLINES+=("LoadError=org.freedesktop.systemd1.NoSuchUnit \"Unit $unit not found.\"")
	fi
}

cmd_show() {
	local first=1 unit line key p want
	if [ "$#" = 0 ]; then
		PROPLINES=("Version=$VERSION" "Architecture=$(uname -m)" "SystemState=running" "Virtualization=container")
		set -- ""
	fi
	for unit in "$@"; do
		[ "$first" = 1 ] || echo
		first=0
		[ -n "$unit" ] && show_props "$unit"
		for line in "${PROPLINES[@]}"; do
			key=${line%%=*}
			if [ "${#PROPS[@]}" -gt 0 ]; then
				want=0
				for p in "${PROPS[@]}"; do [ "$p" = "$key" ] && want=1; done
				[ "$want" = 1 ] || continue
			elif [ "$ALL" = 0 ] && [ -z "${line#*=}" ]; then
				continue
			fi
			if [ "$VALUE" = 1 ]; then printf '%s\n' "${line#*=}"; else printf '%s\n' "$line"; fi
		done
	done
}

cmd_status() {
	local unit=$1 sd=$STATE_DIR/$1 dot=○ active comm="" ufs log since status
	load "$unit"
	if [ "$U_LOAD" = not-found ] && [ ! -d "$sd" ]; then
		err "Unit $unit could not be found."
		return 4
	fi
	enabled_state "$unit"
	ufs=$ENABLED
	warn_reload "$unit"
	active="$ACTIVE ($SUB)"
	case $ACTIVE in
	active) dot=● ;;
	failed)
		dot=×
		active="failed (Result: $RESULT)"
		;;
	esac
	if [ "$ACTIVE" != inactive ] && [ -f "$sd/since" ]; then
		readf since "$sd/since"
		active+=" since $since"
	fi
	echo "$dot $unit${U_DESC:+ - $U_DESC}"
	if [ "$U_LOAD" = loaded ]; then
		echo "     Loaded: loaded ($U_PATH; ${ufs:-static}; preset: enabled)"
	else
		echo "     Loaded: $U_LOAD"
	fi
	echo "     Active: $active"
	if [ "$MAINPID" != 0 ]; then
		readf comm "/proc/$MAINPID/comm"
		echo "   Main PID: $MAINPID ($comm)"
	elif [ -f "$sd/exit_status" ]; then
		strip_prefix "$U_EXECSTART"
		readf status "$sd/exit_status"
		echo "    Process: ExecStart=$CMDLINE (code=exited, status=$status)"
	fi
	log=$LOG_DIR/$unit.log
	if [ -s "$log" ] && [ "$LINES" -gt 0 ]; then
		echo
		tail -n "$LINES" "$log"
	fi
	[ "$ACTIVE" = active ] && return 0
	return 3
}

cmd_kill() {
	local unit=$1 sd=$STATE_DIR/$1
	need_root kill "$unit"
	load "$unit"
	if [ "$MAINPID" = 0 ]; then
		err "Failed to kill unit $unit: No main process to kill"
		return 1
	fi
	if [ "$KILL_WHO" = main ] || ! alive "$sd/supervisor.pid"; then
		kill -s "${SIGNAL#SIG}" "$MAINPID"
	else
		# The service's processes, not its supervisor.
		local p
		for p in $(pgrep -g "$PID"); do
			[ "$p" = "$PID" ] || kill -s "${SIGNAL#SIG}" "$p" 2>/dev/null
		done
	fi
}

cmd_list_units() {
	local f unit n=0
	[ "$QUIET" = 1 ] || printf '%-30s %-9s %-9s %-9s %s\n' UNIT LOAD ACTIVE SUB DESCRIPTION
	for f in "$UNIT_DIR"/*.service; do
		[ -e "$f" ] || continue
		unit=${f##*/}
		[ "$#" -gt 0 ] && [[ $unit != $1 ]] && [[ ${unit%.service} != $1 ]] && continue
		load "$unit"
		[ "$ALL" = 1 ] || [ "$ACTIVE" != inactive ] || continue
		printf '%-30s %-9s %-9s %-9s %s\n' "$unit" "$U_LOAD" "$ACTIVE" "$SUB" "$U_DESC"
		n=$((n + 1))
	done
	[ "$QUIET" = 1 ] || printf '\n%d loaded units listed.\n' "$n"
}

cmd_list_unit_files() {
	local f unit n=0
	[ "$QUIET" = 1 ] || printf '%-30s %-9s %s\n' "UNIT FILE" STATE PRESET
	for f in "$UNIT_DIR"/*.service; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		unit=${f##*/}
		if [ "$#" -gt 0 ]; then
			local m=0 pat
			for pat in "$@"; do [[ $unit == $pat ]] && m=1; done
			[ "$m" = 1 ] || continue
		fi
		is_enabled_state "$unit"
		printf '%-30s %-9s %s\n' "$unit" "$ENABLED" enabled
		n=$((n + 1))
	done
	[ "$QUIET" = 1 ] || printf '\n%d unit files listed.\n' "$n"
	[ "$n" -gt 0 ]
}

# ---- main ------------------------------------------------------------------------

if [ "${1:-}" = __supervise ]; then
	cmd_supervise "$2"
	exit 0
fi

ARGS=()
while [ "$#" -gt 0 ]; do
	a=$1
	shift
	case $a in
	-q | --quiet) QUIET=1 ;;
	--no-pager | --no-block | --no-legend | --plain | --system | --no-ask-password | --no-reload | -l | --full | -f | --force | --runtime) ;;
	--now) NOW=1 ;;
	--value) VALUE=1 ;;
	-a | --all) ALL=1 ;;
	-p | --property | -n | --lines | -s | --signal | --kill-who | -t | --type | --state | -o | --output | -H | --host | -M | --machine)
		if [ "$#" = 0 ]; then
			err "systemctl: option '$a' requires an argument"
			exit 1
		fi
		set -- "$a=$1" "${@:2}"
		continue
		;;
	-p* | --property=*)
		v=${a#--property=}
		[ "$v" = "$a" ] && v=${a#-p}
		IFS=, read -r -a more <<<"${v#=}"
		PROPS+=("${more[@]}")
		;;
	-n* | --lines=*)
		v=${a#--lines=}
		[ "$v" = "$a" ] && v=${a#-n}
		LINES=${v#=}
		;;
	-s* | --signal=*)
		v=${a#--signal=}
		[ "$v" = "$a" ] && v=${a#-s}
		SIGNAL=${v#=}
		;;
	--kill-who=*) KILL_WHO=${a#--kill-who=} ;;
	-t* | --type=* | --state=* | -o* | --output=*) ;;
	--user | --global | -H* | --host=* | -M* | --machine=*)
		err "systemctl ($VERSION): $a is not supported in the ferry lab"
		exit 1
		;;
	--version)
		echo "systemd $VERSION"
		exit 0
		;;
	-h | --help)
		sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	--) ARGS+=("$@") && break ;;
	-*)
		err "systemctl: unrecognized option '$a'"
		exit 1
		;;
	*) ARGS+=("$a") ;;
	esac
done

set -- "${ARGS[@]}"
CMD=${1:-list-units}
[ "$#" -gt 0 ] && shift
UNITS=()
for u in "$@"; do
	unit_name "$u"
	UNITS+=("$UNIT")
done

need_units() {
	if [ "${#UNITS[@]}" = 0 ]; then
		err "Too few arguments."
		exit 1
	fi
}

rc=0
case $CMD in
start | stop | restart | reload | try-restart | reload-or-restart | try-reload-or-restart | enable | disable | mask | unmask | kill | reset-failed)
	need_units
	for u in "${UNITS[@]}"; do
		case $CMD in
		start) (cmd_start "$u") ;;
		stop) (cmd_stop "$u") ;;
		restart) (cmd_restart "$u") ;;
		reload) (cmd_reload "$u") ;;
		try-restart)
			state "$u"
			if [ "$ACTIVE" = active ]; then (cmd_restart "$u"); else true; fi
			;;
		reload-or-restart | try-reload-or-restart)
			state "$u"
			if [ "$ACTIVE" = active ]; then
				(cmd_reload "$u")
			elif [ "$CMD" = reload-or-restart ]; then
				(cmd_start "$u")
			else
				true
			fi
			;;
		enable) (cmd_enable "$u") ;;
		disable) (cmd_disable "$u") ;;
		mask) (cmd_mask "$u") ;;
		unmask) (cmd_unmask "$u") ;;
		kill) (cmd_kill "$u") ;;
		reset-failed)
			state "$u"
			if [ "$ACTIVE" = failed ]; then
				echo inactive >"$STATE_DIR/$u/state"
				echo success >"$STATE_DIR/$u/result"
			fi
			;;
		esac
		r=$?
		[ "$r" != 0 ] && rc=$r
	done
	;;
is-active | is-failed)
	need_units
	rc=3
	[ "$CMD" = is-failed ] && rc=1
	for u in "${UNITS[@]}"; do
		state "$u"
		say "$ACTIVE"
		if [ "$CMD" = is-active ] && [ "$ACTIVE" = active ]; then rc=0; fi
		if [ "$CMD" = is-failed ] && [ "$ACTIVE" = failed ]; then rc=0; fi
	done
	;;
is-enabled)
	need_units
	rc=1
	for u in "${UNITS[@]}"; do
		is_enabled_state "$u"
		if [ -z "$ENABLED" ]; then
			err "Failed to get unit file state for $u: No such file or directory"
			continue
		fi
		say "$ENABLED"
		case $ENABLED in enabled | static | alias | indirect | generated | transient) rc=0 ;; esac
	done
	;;
daemon-reload | daemon-reexec) cmd_daemon_reload || rc=$? ;;
status)
	if [ "${#UNITS[@]}" = 0 ]; then
		echo "● $(hostname)"
		echo "    State: running"
		exit 0
	fi
	rc=0
	for u in "${UNITS[@]}"; do
		cmd_status "$u"
		r=$?
		[ "$r" -gt "$rc" ] && rc=$r
	done
	;;
show) cmd_show "${UNITS[@]}" ;;
cat)
	need_units
	for u in "${UNITS[@]}"; do
		load "$u"
		if [ "$U_LOAD" != loaded ]; then
			err "No files found for $u."
			rc=1
			continue
		fi
		echo "# $U_PATH"
		cat "$U_PATH"
	done
	;;
list-units) cmd_list_units "$@" ;;
list-unit-files) cmd_list_unit_files "$@" || rc=1 ;;
*)
	err "Unknown command verb '$CMD'."
	rc=1
	;;
esac
exit "$rc"
