package tasks

// LocalPath resolves a controller-side path (copy, template, script,
// release and unarchive `src`) as the module will when it runs: against dir
// (the task's Host.Dir), `~/` against the controller user's home. The
// runner and `ferry check` use it to find a missing file before any host is
// touched.
func LocalPath(dir, p string) string { return localPath(&Host{Dir: dir}, p) }

// LocalPathIn is LocalPath with Host.Fallback: dirs[0] first, then the
// others, the first that holds p.
func LocalPathIn(dirs []string, p string) string {
	if len(dirs) == 0 {
		return localPath(&Host{}, p)
	}
	return localPath(&Host{Dir: dirs[0], Fallback: dirs[1:]}, p)
}
