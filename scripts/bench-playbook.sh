#!/usr/bin/env bash
# Runs inside `ferry-lab run --hosts 20` (FERRY_LAB_* set): ferry run vs
# ansible-playbook on the same fleet — 10 `command: true` tasks on 20 hosts,
# and the serial-1 rolling deploy on 5 and 20 hosts (each run flips v1<->v2,
# so every measured run really deploys).
set -euo pipefail
out=$1
root=$PWD
ferry="$root/bin/ferry"
inv=$FERRY_LAB_INVENTORY
export FERRY_KNOWN_HOSTS=$FERRY_LAB_KNOWN_HOSTS FERRY_RECORD_DIR=$(mktemp -d)
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_PIPELINING=True ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
export ANSIBLE_LOCAL_TEMP=$(mktemp -d) ANSIBLE_SSH_CONTROL_PATH_DIR=$(mktemp -d)
dist=$(mktemp -d)
for v in v1 v2; do
	mkdir -p "$dist/$v"
	CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$v" -o "$dist/$v/app" ./playbooks/examples/app
done
state=$(mktemp)
echo v1 >"$state"
"$ferry" run playbooks/examples/setup.yml -i "$inv" -e dist="$dist" -e version=v1 -o plain >/dev/null

# Each call deploys the other version than the previous call.
cat >"$dist/flip.sh" <<FLIP
#!/usr/bin/env bash
set -e
v=\$(cat $state); if [ "\$v" = v1 ]; then v=v2; else v=v1; fi; echo \$v > $state
case "\$1" in
ferry) exec "$ferry" run "$root/playbooks/examples/deploy.yml" -i "$inv" -l "\$2" -e dist="$dist" -e version=\$v -o plain >/dev/null ;;
ansible) exec ansible-playbook -i "$inv" -l "\$2" "$root/testdata/bench/deploy.ansible.yml" -e dist="$dist" -e extra_version=\$v >/dev/null ;;
esac
FLIP
chmod +x "$dist/flip.sh"
serial1=$(mktemp --suffix=.yml)
sed 's/^  serial: \[1, "50%"\]/  serial: 1/' playbooks/examples/deploy.yml >"$serial1"
sed -i "s|$root/playbooks/examples/deploy.yml|$serial1|" "$dist/flip.sh"

hyperfine -N --warmup 1 --runs ${RUNS:-5} --export-markdown "$out/ten-tasks.md" --export-json "$out/ten-tasks.json" \
	-n "ferry run, 10 tasks x 20 hosts (forks 20)" "$ferry run testdata/bench/ten-tasks.yml -i $inv -f 20 -o plain" \
	-n "ansible-playbook, 10 tasks x 20 hosts (forks 20)" -i "ansible-playbook -i $inv -f 20 testdata/bench/ten-tasks.ansible.yml" \
	-n "ansible-playbook, 10 tasks x 20 hosts (forks 5)" "ansible-playbook -i $inv -f 5 testdata/bench/ten-tasks.ansible.yml"

for n in 5 20; do
	lim=$(seq -f 'app%g' 1 $n | paste -sd, -)
	hyperfine -N --runs ${DEPLOY_RUNS:-3} --export-markdown "$out/deploy-$n.md" --export-json "$out/deploy-$n.json" \
		-n "ferry run deploy, serial 1, $n hosts" "$dist/flip.sh ferry $lim" \
		-n "ansible-playbook deploy, serial 1, $n hosts" "$dist/flip.sh ansible $lim"
done
