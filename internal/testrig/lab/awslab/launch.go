package awslab

import "fmt"

// Hook is the launch lifecycle hook of Group in the lab.
const Hook = "ferry-deploy-on-launch"

// Launch has Auto Scaling launch a lab host held back by
// Options.Launching: its instance starts (and joins the aws_ec2
// inventory), enters Group in Pending:Wait, outside the load balancers,
// and the notification the hook sends to its queue is returned, with
// metadata as the hook's NotificationMetadata.
func (a *AWS) Launch(host, metadata string) (notification string, err error) {
	inst, ok := a.launchable[host]
	if !ok {
		return "", fmt.Errorf("awslab: %s is not a host to launch (Options.Launching)", host)
	}
	delete(a.launchable, host)
	a.Server.AddInstance(a.Account, a.Region, inst)
	return a.Server.Launch(a.Account, a.Region, Group, Hook, inst.ID, metadata)
}

// TestNotification is what the hook sends to its queue when it is created.
func (a *AWS) TestNotification() string {
	return a.Server.TestNotification(a.Account, a.Region, Group)
}
