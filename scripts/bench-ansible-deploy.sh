#!/usr/bin/env bash
# Runs inside `ferry-lab run --hosts N` (FERRY_LAB_* set): the same Ansible
# playbook (testdata/ansible-deploy/deploy.yml: role, handler, serial 1) run
# by `ferry run` and by `ansible-playbook` on the same fleet. Each call
# deploys the other version than the previous one, so every run really deploys.
# Usage (as root): bin/ferry-lab run -q --hosts 5 -- scripts/bench-ansible-deploy.sh OUTDIR
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
"$ferry" run playbooks/examples/setup.yml -i "$inv" -e dist="$dist" -e version=v1 -o plain >/dev/null
state=$(mktemp)
echo v1 >"$state"
cat >"$dist/flip.sh" <<FLIP
#!/usr/bin/env bash
set -e
v=\$(cat $state); if [ "\$v" = v1 ]; then v=v2; else v=v1; fi; echo \$v > $state
case "\$1" in
ferry) exec "$ferry" run "$root/testdata/ansible-deploy/deploy.yml" -i "$inv" -e dist="$dist" -e app_version=\$v -o plain >/dev/null ;;
ansible) exec ansible-playbook -i "$inv" "$root/testdata/ansible-deploy/deploy.yml" -e dist="$dist" -e app_version=\$v >/dev/null ;;
esac
FLIP
chmod +x "$dist/flip.sh"
n=$(grep -c 'ansible_host' "$inv" || true)
hyperfine -N --runs ${RUNS:-4} --export-markdown "$out/ansible-deploy.md" --export-json "$out/ansible-deploy.json" \
	-n "ferry run testdata/ansible-deploy/deploy.yml ($n hosts, serial 1)" "$dist/flip.sh ferry" \
	-n "ansible-playbook testdata/ansible-deploy/deploy.yml ($n hosts, serial 1)" "$dist/flip.sh ansible"
