package tasks

// LocalPath resolves a controller-side path (copy, template, script,
// release and unarchive `src`) as the module will when it runs: against dir
// (the task's Host.Dir), `~/` against the controller user's home. The
// runner and `ferry check` use it to find a missing file before any host is
// touched.
func LocalPath(dir, p string) string { return localPath(&Host{Dir: dir}, p) }
