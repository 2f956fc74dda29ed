#!/usr/bin/env bash
# Runs inside `ferry-lab run --hosts 20` (FERRY_LAB_* set): ferry run vs
# ansible-playbook on the same fleet — 10 `command: true` tasks on 20 hosts,
# and the serial-1 rolling deploy on 5 and 20 hosts next to Ansible and to
# the hand-written OpenSSH ControlMaster floor (scripts/bench-deploy-floor.sh);
# each run flips v1<->v2, so every measured run really deploys. ferry runs
# on an environment of ferry.yml (`--env bench`), so the deploy lock and the
# release state are on, as in production.
# RUNS / DEPLOY_RUNS: hyperfine runs; DEPLOY_SIZES (default "5 20").
set -euo pipefail
out=$1
root=$PWD
ferry="$root/bin/ferry"
inv=$FERRY_LAB_INVENTORY
export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS FERRY_RECORD_DIR=$(mktemp -d)
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_PIPELINING=True ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
export ANSIBLE_LOCAL_TEMP=$(mktemp -d) ANSIBLE_SSH_CONTROL_PATH_DIR=$(mktemp -d)
dist=$(mktemp -d)
scripts/build-app.sh "$dist" v1 v2
state=$(mktemp)
echo v1 >"$state"
"$ferry" run playbooks/examples/setup.yml -i "$inv" -e dist="$dist" -e version=v1 -o plain >/dev/null
export FERRY_CONFIG=$dist/ferry.yml
printf 'environments:\n  bench: {inventory: %s}\n' "$inv" >"$FERRY_CONFIG"

# Each call deploys the other version than the previous call. Before each
# measured deploy, prep.sh (hyperfine --prepare, not timed) removes the
# release about to be deployed from every host: each tool then really
# uploads it, as for any new version. (Without this, from the third run
# on both versions sat on every host, ferry's and Ansible's checksums
# skipped the upload and only the floor's `cat` copied it: figures before
# this change compared unlike work.)
cat >"$dist/prep.sh" <<PREP
#!/usr/bin/env bash
set -e
v=\$(cat $state); if [ "\$v" = v1 ]; then v=v2; else v=v1; fi
"$ferry" exec -i "$inv" -l "\$1" -- sudo -n rm -rf /opt/app/releases/\$v >/dev/null
PREP
chmod +x "$dist/prep.sh"
# Forks 20 for both tools, as for the ten tasks: serial 1 keeps one host
# out of service at a time either way; for ferry it is how many hosts
# stage at once (with the default of 10, the stage: ran in two waves).
cat >"$dist/flip.sh" <<FLIP
#!/usr/bin/env bash
set -e
v=\$(cat $state); if [ "\$v" = v1 ]; then v=v2; else v=v1; fi; echo \$v > $state
case "\$1" in
ferry) exec "$ferry" run "$root/playbooks/examples/deploy.yml" --env bench -l "\$2" -f 20 -e dist="$dist" -e version=\$v -o plain >/dev/null ;;
ferry-nostage) exec "$ferry" run NOSTAGE --env bench -l "\$2" -f 20 -e dist="$dist" -e version=\$v -o plain >/dev/null ;;
floor) exec "$root/scripts/bench-deploy-floor.sh" "$dist" \$v \$(echo "\$2" | tr , ' ') ;;
ansible) exec ansible-playbook -i "$inv" -l "\$2" -f 20 "$root/testdata/bench/deploy.ansible.yml" -e dist="$dist" -e extra_version=\$v >/dev/null ;;
esac
FLIP
chmod +x "$dist/flip.sh"
serial1=$(mktemp --suffix=.yml)
sed 's/^  serial: \[1, "50%"\]/  serial: 1/' playbooks/examples/deploy.yml >"$serial1"
sed -i "s|$root/playbooks/examples/deploy.yml|$serial1|" "$dist/flip.sh"
# The same deploy without its stage: list (the upload inside each host's
# window, as the floor does it): ferry's cost over the floor, like for like.
nostage=$(mktemp --suffix=.yml)
awk '/^  stage:/{skip=1} /^  tasks:/{skip=0} !skip' "$serial1" >"$nostage"
sed -i "s|NOSTAGE|$nostage|" "$dist/flip.sh"

hyperfine -N --warmup 1 --runs ${RUNS:-5} --export-markdown "$out/ten-tasks.md" --export-json "$out/ten-tasks.json" \
	-n "ferry run, 10 tasks x 20 hosts (forks 20, lock and release state on)" "$ferry run testdata/bench/ten-tasks.yml --env bench -f 20 -o plain" \
	-n "ansible-playbook, 10 tasks x 20 hosts (forks 20)" -i "ansible-playbook -i $inv -f 20 testdata/bench/ten-tasks.ansible.yml" \
	-n "ansible-playbook, 10 tasks x 20 hosts (forks 5)" "ansible-playbook -i $inv -f 5 testdata/bench/ten-tasks.ansible.yml"

for n in ${DEPLOY_SIZES:-5 20}; do
	lim=$(seq -f 'app%g' 1 $n | paste -sd, -)
	hyperfine -N --runs ${DEPLOY_RUNS:-3} --prepare "$dist/prep.sh $lim" --export-markdown "$out/deploy-$n.md" --export-json "$out/deploy-$n.json" \
		-n "ferry run deploy, serial 1, $n hosts (stage: first)" "$dist/flip.sh ferry $lim" \
		-n "ferry run deploy, serial 1, $n hosts (no stage:)" "$dist/flip.sh ferry-nostage $lim" \
		-n "OpenSSH ControlMaster floor, serial 1, $n hosts" "$dist/flip.sh floor $lim" \
		-n "ansible-playbook deploy, serial 1, $n hosts" "$dist/flip.sh ansible $lim"
done
