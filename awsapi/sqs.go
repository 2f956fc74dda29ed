package awsapi

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Queue is one SQS queue, as the worker and `ferry enqueue` use it.
type Queue struct {
	URL    string
	Region string
	c      *sqs.Client
}

// Message is one received message.
type Message struct {
	ID, Body, Receipt string
	GroupID           string
	ReceiveCount      int // ApproximateReceiveCount: 1 on the first delivery
	// SenderID is who sent it, as SQS authenticated them (the IAM user or
	// role's unique ID; "" when the queue did not say): unlike anything in
	// the body, the sender cannot choose it.
	SenderID string
}

// Queue returns the queue at queueURL, in the region its host names
// (sqs.REGION.amazonaws.com), else the base region. The SDK sends the
// calls to AWS_ENDPOINT_URL_SQS when that is set.
func (f *Factory) Queue(queueURL string) (*Queue, error) {
	u, err := url.Parse(queueURL)
	if err != nil || u.Host == "" || strings.Count(strings.Trim(u.Path, "/"), "/") != 1 {
		return nil, fmt.Errorf("%q is not an SQS queue URL (want https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)", queueURL)
	}
	region := f.base.Region
	if parts := strings.Split(u.Hostname(), "."); len(parts) >= 4 && parts[0] == "sqs" && parts[len(parts)-2] == "amazonaws" {
		region = parts[1]
	}
	cfg := f.base.Copy()
	cfg.Region = region
	return &Queue{URL: queueURL, Region: region, c: sqs.NewFromConfig(cfg)}, nil
}

// Send puts body on the queue; group and dedup are the FIFO message group
// and deduplication IDs (empty for a standard queue).
func (q *Queue) Send(ctx context.Context, body, group, dedup string) (string, error) {
	in := &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)}
	if group != "" {
		in.MessageGroupId = aws.String(group)
	}
	if dedup != "" {
		in.MessageDeduplicationId = aws.String(dedup)
	}
	out, err := q.c.SendMessage(ctx, in)
	if err != nil {
		return "", fmt.Errorf("send to %s: %w", q.URL, Explain(err, q.Region, "", ""))
	}
	return aws.ToString(out.MessageId), nil
}

// Receive long-polls for up to wait (at most 20s, SQS's limit) and returns
// at most max messages, each hidden from other consumers for visibility.
func (q *Queue) Receive(ctx context.Context, n int, wait, visibility time.Duration) ([]Message, error) {
	out, err := q.c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.URL),
		MaxNumberOfMessages:         int32(min(max(n, 1), 10)),
		WaitTimeSeconds:             int32(min(wait/time.Second, 20)),
		VisibilityTimeout:           int32(visibility / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		// local-aws-sqs (the worker tests' SQS) reads only the older,
		// deprecated name of the same parameter; SQS accepts both.
		//lint:ignore SA1019 sent on purpose, for local-aws-sqs (see above)
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", q.URL, Explain(err, q.Region, "", ""))
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		n, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		msgs = append(msgs, Message{
			ID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), Receipt: aws.ToString(m.ReceiptHandle),
			GroupID: m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)], ReceiveCount: n,
			SenderID: m.Attributes[string(types.MessageSystemAttributeNameSenderId)],
		})
	}
	return msgs, nil
}

// SetVisibility hides a received message for d more from now; 0 makes it
// visible again at once (hands it back to the queue).
func (q *Queue) SetVisibility(ctx context.Context, receipt string, d time.Duration) error {
	_, err := q.c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q.URL), ReceiptHandle: aws.String(receipt), VisibilityTimeout: int32(d / time.Second),
	})
	if err != nil {
		return fmt.Errorf("change visibility on %s: %w", q.URL, Explain(err, q.Region, "", ""))
	}
	return nil
}

// Delete removes a received message: its work is done.
func (q *Queue) Delete(ctx context.Context, receipt string) error {
	_, err := q.c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: aws.String(receipt)})
	if err != nil {
		return fmt.Errorf("delete from %s: %w", q.URL, Explain(err, q.Region, "", ""))
	}
	return nil
}

// CreateQueue creates a queue with attributes (FifoQueue, VisibilityTimeout,
// RedrivePolicy, …) and returns its URL and ARN. For tests and set-up.
func (f *Factory) CreateQueue(ctx context.Context, name string, attrs map[string]string) (queueURL, arn string, err error) {
	c := sqs.NewFromConfig(f.base)
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, Explain(err, f.base.Region, "", ""))
	}
	queueURL = aws.ToString(out.QueueUrl)
	a, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", "", fmt.Errorf("queue %s: %w", name, Explain(err, f.base.Region, "", ""))
	}
	return queueURL, a.Attributes[string(types.QueueAttributeNameQueueArn)], nil
}

// Depth returns the queue's visible and in-flight message counts.
func (q *Queue) Depth(ctx context.Context) (visible, inFlight int, err error) {
	out, err := q.c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, 0, fmt.Errorf("attributes of %s: %w", q.URL, Explain(err, q.Region, "", ""))
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight, nil
}
