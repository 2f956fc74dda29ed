// Package systemctl holds the lab's stand-in for systemd's systemctl: a bash
// script installed as /usr/local/bin/systemctl (and /usr/bin/systemctl) on
// every lab app host, where no systemd runs. It reads units from
// /etc/systemd/system, really starts and stops their processes, and answers
// is-active, is-enabled, show and status as systemd does, so that ferry's and
// Ansible's systemd modules work against lab hosts. See the script's header
// for what it supports.
package systemctl

import _ "embed"

// Script is the stand-in's source, an executable bash script.
//
//go:embed systemctl.bash
var Script []byte

// InstallPath is where the lab installs Script on app hosts.
const InstallPath = "/usr/local/bin/systemctl"
