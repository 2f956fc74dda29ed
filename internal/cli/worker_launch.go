package cli

import (
	"context"
	"fmt"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/worker"
)

// Launch implements worker.Runner: the environment's current release, to
// the launched instance only.
func (r *cliRunner) Launch(ctx context.Context, m awsapi.Message, l *worker.Launch) worker.Outcome {
	return worker.Outcome{ExitCode: exitcode.Invalid, Err: fmt.Errorf("launch of %s: not wired yet", l.EC2InstanceID)}
}
