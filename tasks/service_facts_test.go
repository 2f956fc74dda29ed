package tasks

import (
	"context"
	"reflect"
	"testing"
)

func TestParseServices(t *testing.T) {
	out := `@@units
app.service            loaded    active   running App
cron.service           loaded    active   exited  Regular background program processing daemon
● gone.service         not-found inactive dead    gone.service
broken.service         loaded    failed   failed  Broken
@@files
app.service                    enabled         enabled
cron.service                   static          -
broken.service                 enabled         enabled
idle.service                   disabled        enabled
`
	got := ParseServices(out)
	want := map[string]any{
		"app.service":    map[string]any{"name": "app.service", "state": "running", "status": "enabled", "source": "systemd"},
		"cron.service":   map[string]any{"name": "cron.service", "state": "stopped", "status": "static", "source": "systemd"},
		"gone.service":   map[string]any{"name": "gone.service", "state": "stopped", "status": "not-found", "source": "systemd"},
		"broken.service": map[string]any{"name": "broken.service", "state": "stopped", "status": "failed", "source": "systemd"},
		"idle.service":   map[string]any{"name": "idle.service", "state": "inactive", "status": "disabled", "source": "systemd"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("services\n%v\nwant\n%v", got, want)
	}
	if got := ParseServices("@@sysv\nREADME\nnginx\nssh\n"); len(got) != 2 || got["nginx"] == nil {
		t.Errorf("sysv: %v", got)
	}
}

func TestParsePackages(t *testing.T) {
	got := ParsePackages("@@apt\nii \tbash\t5.2.15-2+b2\tamd64\nrc \told\t1.0\tamd64\nii \topenssh-server\t1:9.2p1-2\tamd64\n" +
		"@@rpm\nnginx\t1.20.1\t14.el9\t1\tx86_64\nbash\t5.1.8\t6.el9\t(none)\tx86_64\n@@apk\nca-certificates-bundle-20230506-r0\n")
	if v := got["openssh-server"].([]any)[0].(map[string]any)["version"]; v != "1:9.2p1-2" {
		t.Errorf("openssh-server version %v", v)
	}
	if got["old"] != nil {
		t.Error("a removed package (rc) is listed")
	}
	if len(got["bash"].([]any)) != 2 {
		t.Errorf("bash from two managers: %v", got["bash"])
	}
	if e := got["nginx"].([]any)[0].(map[string]any)["epoch"]; e != 1 {
		t.Errorf("nginx epoch %v", e)
	}
	if p := got["ca-certificates-bundle"]; p == nil || p.([]any)[0].(map[string]any)["version"] != "20230506" {
		t.Errorf("apk: %v", got)
	}
}

// On this machine (Debian), package_facts finds bash through dpkg, in one command.
func TestPackageFactsLocal(t *testing.T) {
	conn := newLocalConn(t)
	out, err := packageFactsModule{}.Run(context.Background(), &Host{Conn: conn, Vars: map[string]any{}}, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	pkgs := out.Facts["ansible_facts"].(map[string]any)["packages"].(map[string]any)
	if len(pkgs) == 0 {
		t.Skip("no dpkg, rpm or apk on this machine")
	}
	if pkgs["bash"] == nil {
		t.Errorf("%d packages, no bash", len(pkgs))
	}
}
