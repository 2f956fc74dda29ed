package awsapi_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
)

// Config.Env is where the SDK's variables come from, not the process: two
// factories in one process, each with its own environment, reach their
// own emulator in their own region (the way ferry's parallel tests run
// commands). Nothing here sets the process environment.
func TestEnvIsTheCommands(t *testing.T) {
	t.Parallel()
	none := filepath.Join(t.TempDir(), "none")
	serve := func() (*awsemu.Server, string) {
		s := awsemu.New(awsemu.Options{})
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		return s, srv.URL
	}
	s1, u1 := serve()
	s2, u2 := serve()
	cases := []struct {
		name   string
		env    map[string]string
		region string
		want   *awsemu.Server
	}{
		{"AWS_ENDPOINT_URL", map[string]string{"AWS_ENDPOINT_URL": u1, "AWS_REGION": "eu-west-1"}, "eu-west-1", s1},
		// The service's own variable beats the general one, as in the SDK;
		// AWS_DEFAULT_REGION counts when AWS_REGION is unset.
		{"AWS_ENDPOINT_URL_EC2", map[string]string{"AWS_ENDPOINT_URL": u1, "AWS_ENDPOINT_URL_EC2": u2, "AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1", s2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
				"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none}
			for k, v := range c.env {
				env[k] = v
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			f, err := awsapi.NewFactory(context.Background(), awsapi.Config{Env: lookup, MaxAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.DefaultRegion(); got != c.region {
				t.Errorf("region %q, want %q", got, c.region)
			}
			if err := f.CheckCredentials(context.Background()); err != nil {
				t.Fatal(err)
			}
			before := len(c.want.Requests())
			if _, err := f.ForRole("", "").EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{}); err != nil {
				t.Fatal(err)
			}
			reqs := c.want.Requests()
			if len(reqs) != before+1 || reqs[len(reqs)-1].Action != "DescribeInstances" || reqs[len(reqs)-1].Region != c.region {
				t.Errorf("the emulator the environment names saw %+v after %d requests, want one DescribeInstances in %s", reqs, before, c.region)
			}
		})
	}
}
