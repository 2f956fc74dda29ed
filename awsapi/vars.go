package awsapi

// Host variables that the aws_ec2 inventory sets on every instance and
// that the AWS modules, the runner and `ferry status` read back: one
// spelling for producer and consumers.
const (
	VarInstanceID       = "instance_id"
	VarRegion           = "region"
	VarAccountID        = "account_id"
	VarRoleARN          = "aws_role_arn"      // the role assumed to reach the instance's account, when not the base one
	VarAutoScalingGroup = "autoscaling_group" // the group holding the instance, "" when none
)
