//go:build !linux

package natstest

import "syscall"

// procAttr is empty where no parent-death signal exists: Close must run.
func procAttr() *syscall.SysProcAttr { return nil }
