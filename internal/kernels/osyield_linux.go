package kernels

import "syscall"

// osYield offers the CPU to another runnable thread of the machine
// (sched_yield) and returns at once when there is none. The goroutine keeps
// its Go processor.
func osYield() {
	syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
}
