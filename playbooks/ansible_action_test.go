package playbooks

import (
	"reflect"
	"testing"
)

// ec2_elb through local_action (args:, module:, or a key=value string)
// gets the same mapping as ec2_elb written directly.
func TestLocalActionKeepsAnsibleMapping(t *testing.T) {
	src := `- hosts: all
  tasks:
    - local_action:
        module: ec2_elb
        instance_id: i-1
        ec2_elbs: [lb1]
        state: absent
        wait_timeout: 300
    - local_action: ec2_elb instance_id=i-1 ec2_elbs=lb1 state=absent wait_timeout=300
    - action: ec2_elb
      args: {instance_id: i-1, ec2_elbs: [lb1], state: absent, wait_timeout: 300}
      delegate_to: localhost
    - ec2_elb: {instance_id: i-1, ec2_elbs: [lb1], state: absent, wait_timeout: 300}
      delegate_to: localhost
`
	pb, err := Parse("site.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	list := pb.Plays[0].Tasks
	want := list[3]
	if want.Module != "elb" || want.Args["state"] != "drained" || want.Args["load_balancers"] == nil {
		t.Fatalf("direct ec2_elb: %s %v", want.Module, want.Args)
	}
	for i, tk := range list[:3] {
		args := tk.Args
		if lb, ok := args["load_balancers"].(string); ok { // key=value gives a string
			args["load_balancers"] = []any{lb}
		}
		if tk.Module != want.Module || tk.DelegateTo != "localhost" || !reflect.DeepEqual(args["state"], want.Args["state"]) ||
			!reflect.DeepEqual(args["load_balancers"], want.Args["load_balancers"]) || args["timeout"] == nil {
			t.Errorf("task %d: %s %v, want %v", i+1, tk.Module, args, want.Args)
		}
	}
}

// docker_container's networks: [{name: N}] is ferry's network: N; several
// are ferry's networks: [N, M].
func TestDockerContainerNetworks(t *testing.T) {
	pb, err := Parse("site.yml", []byte(`- hosts: all
  tasks:
    - community.docker.docker_container:
        name: api
        image: api:1
        networks:
          - name: backend
`))
	if err != nil {
		t.Fatal(err)
	}
	if tk := pb.Plays[0].Tasks[0]; tk.Module != "docker" || tk.Args["network"] != "backend" {
		t.Fatalf("%s %v", tk.Module, tk.Args)
	}
	pb, err = Parse("site.yml", []byte("- hosts: all\n  tasks:\n    - docker_container: {name: api, image: 'api:1', networks: [{name: a}, {name: b}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tk := pb.Plays[0].Tasks[0]; !reflect.DeepEqual(tk.Args["networks"], []any{"a", "b"}) || tk.Args["network"] != nil {
		t.Errorf("two networks: %v", tk.Args)
	}
	for _, bad := range []string{"[{name: a, aliases: [x]}, {name: b}]", "[a, b]", "[]", "{name: a}"} {
		if _, err := Parse("site.yml", []byte("- hosts: all\n  tasks:\n    - docker_container: {name: api, image: 'api:1', networks: "+bad+"}\n")); err == nil {
			t.Errorf("networks: %s accepted", bad)
		}
	}
}

// docker_compose_v2 is ferry's compose as it is; the older docker_compose's
// yes/no pull and build and its smart recreate are translated.
func TestDockerComposeAliases(t *testing.T) {
	pb, err := Parse("site.yml", []byte(`- hosts: all
  tasks:
    - community.docker.docker_compose_v2: {project_src: /srv/app, pull: always, state: present, docker_host: "unix:///var/run/docker.sock"}
    - docker_compose: {project_src: /srv/app, pull: yes, build: no, recreate: smart}
`))
	if err != nil {
		t.Fatal(err)
	}
	ts := pb.Plays[0].Tasks
	if ts[0].Module != "compose" || ts[0].Args["pull"] != "always" || ts[0].Args["docker_host"] != nil {
		t.Errorf("v2: %s %v", ts[0].Module, ts[0].Args)
	}
	if ts[1].Module != "compose" || ts[1].Args["pull"] != "always" || ts[1].Args["build"] != "policy" || ts[1].Args["recreate"] != "auto" {
		t.Errorf("v1: %s %v", ts[1].Module, ts[1].Args)
	}
	if _, err := Parse("site.yml", []byte("- hosts: all\n  tasks:\n    - docker_compose_v2: {project_src: /srv, definition: {services: {}}}\n")); err == nil {
		t.Error("definition (inline compose file) accepted")
	}
}
