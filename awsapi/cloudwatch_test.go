package awsapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
)

// The real CloudWatch client (query protocol) against the emulator: alarms
// by name and prefix follow their state, and metric data put through the
// API comes back as the query's statistic.
func TestCloudWatchAlarmsAndMetrics(t *testing.T) {
	s := env(t, awsemu.Options{})
	ctx := context.Background()
	c := factory(t).ForRole("us-east-1", "")
	for _, n := range []string{"app-5xx", "app-latency", "db-cpu"} {
		if err := s.SetAlarm(base, "us-east-1", n, "OK", "fine"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.Alarms(ctx, nil, "app-")
	if err != nil || len(got) != 2 || got[0].Name != "app-5xx" || got[0].State != "OK" {
		t.Fatalf("alarms by prefix: %+v, %v", got, err)
	}
	// SetAlarmState through the API, as an operator's script would.
	if _, err := c.CloudWatch.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("app-5xx"), StateValue: "ALARM", StateReason: aws.String("5xx > 10")}); err != nil {
		t.Fatal(err)
	}
	got, err = c.Alarms(ctx, []string{"app-5xx"}, "")
	if err != nil || len(got) != 1 || got[0].State != "ALARM" || got[0].Reason != "5xx > 10" {
		t.Fatalf("alarm by name: %+v, %v", got, err)
	}

	now := time.Now()
	dims := map[string]string{"TargetGroup": "targetgroup/app-tg/1"}
	for i, v := range []float64{2, 5, 1} {
		s.PutMetric(base, "us-east-1", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dims, v, now.Add(time.Duration(-i)*time.Second))
	}
	s.PutMetric(base, "us-east-1", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", map[string]string{"TargetGroup": "other"}, 100, now)
	q := awsapi.MetricQuery{Namespace: "AWS/ApplicationELB", Metric: "HTTPCode_Target_5XX_Count", Stat: "Sum", Dimensions: dims,
		Start: now.Add(-time.Minute), End: now.Add(time.Minute)}
	v, ok, err := c.MetricValue(ctx, q)
	if err != nil || !ok || v != 8 {
		t.Fatalf("sum: %v %v %v, want 8", v, ok, err)
	}
	q.Stat = "Maximum"
	if v, _, _ := c.MetricValue(ctx, q); v != 5 {
		t.Errorf("maximum %v, want 5", v)
	}
	q.Start, q.End = now.Add(time.Hour), now.Add(2*time.Hour)
	if _, ok, err := c.MetricValue(ctx, q); ok || err != nil {
		t.Errorf("no data in range: ok %v, %v", ok, err)
	}
}
