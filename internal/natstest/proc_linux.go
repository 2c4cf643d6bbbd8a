package natstest

import "syscall"

// procAttr kills a server when the test process dies, so that a crashed
// or killed test leaves no server behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
