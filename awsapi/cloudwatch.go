package awsapi

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"
)

// newCloudWatch returns a CloudWatch client speaking the query protocol
// (which CloudWatch keeps serving besides RPCv2 CBOR): the same wire format
// as the ELB and Auto Scaling clients, and the one the local emulator has.
func newCloudWatch(cfg aws.Config) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.Protocol = awsquery.New(&smithy.ServiceSchema{Version: "2010-08-01"})
	})
}

// Alarm is one CloudWatch alarm's state.
type Alarm struct {
	Name, State, Reason string
}

// Alarms returns the metric alarms named names, or whose name starts with
// prefix (one of the two), following pages.
func (c *Clients) Alarms(ctx context.Context, names []string, prefix string) ([]Alarm, error) {
	in := &cloudwatch.DescribeAlarmsInput{AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm}}
	if prefix != "" {
		in.AlarmNamePrefix = aws.String(prefix)
	} else {
		in.AlarmNames = names
	}
	var out []Alarm
	p := cloudwatch.NewDescribeAlarmsPaginator(c.CloudWatch, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe alarms: %w", err)
		}
		for _, a := range page.MetricAlarms {
			out = append(out, Alarm{Name: aws.ToString(a.AlarmName), State: string(a.StateValue), Reason: aws.ToString(a.StateReason)})
		}
	}
	return out, nil
}

// MetricQuery is one CloudWatch metric and statistic over a time range.
type MetricQuery struct {
	Namespace, Metric, Stat string
	Dimensions              map[string]string
	Period                  time.Duration // the statistic's period (default 60s)
	Start, End              time.Time
}

// MetricValue returns the query's newest value; ok is false when the
// metric has no data in the range.
func (c *Clients) MetricValue(ctx context.Context, q MetricQuery) (value float64, ok bool, err error) {
	period := q.Period
	if period <= 0 {
		period = time.Minute
	}
	var dims []cwtypes.Dimension
	for k, v := range q.Dimensions {
		dims = append(dims, cwtypes.Dimension{Name: aws.String(k), Value: aws.String(v)})
	}
	out, err := c.CloudWatch.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(q.Start), EndTime: aws.Time(q.End),
		MetricDataQueries: []cwtypes.MetricDataQuery{{
			Id: aws.String("q"),
			MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{Namespace: aws.String(q.Namespace), MetricName: aws.String(q.Metric), Dimensions: dims},
				Period: aws.Int32(int32(period / time.Second)), Stat: aws.String(q.Stat),
			},
		}},
		ScanBy: cwtypes.ScanByTimestampDescending,
	})
	if err != nil {
		return 0, false, fmt.Errorf("get metric data %s/%s: %w", q.Namespace, q.Metric, err)
	}
	for _, r := range out.MetricDataResults {
		if len(r.Values) > 0 {
			return r.Values[0], true, nil
		}
	}
	return 0, false, nil
}

// Alarms reads alarms in region ("" the default) with the base credentials.
func (f *Factory) Alarms(ctx context.Context, region string, names []string, prefix string) ([]Alarm, error) {
	return f.ForRole(region, "").Alarms(ctx, names, prefix)
}

// MetricValue runs a metric query in region ("" the default) with the base credentials.
func (f *Factory) MetricValue(ctx context.Context, region string, q MetricQuery) (float64, bool, error) {
	return f.ForRole(region, "").MetricValue(ctx, q)
}
