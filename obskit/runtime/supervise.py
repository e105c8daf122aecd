"""Run one program and record how it ended: the process runtime's parent of each service.

``python -I -S supervise.py FD PROGRAM ARGS...``: forks, execs the program (with default
signal dispositions), writes ``pid N`` to file descriptor FD, waits, and writes ``exit
CODE`` or ``signal NUMBER`` when the program ends. It ignores the stop signals itself (the
runtime signals the whole process group; the program gets them), so that a program killed
by SIGKILL, by the OOM killer or by hand, is shown by `obskit status` as killed, not as
having exited. Standard library only, and no site packages: it starts in milliseconds.
"""

import os
import signal
import sys


def main() -> None:
    fd, argv = int(sys.argv[1]), sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)  # what Python changed, back to what a program expects
        os.close(fd)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(2, f"obskit: cannot run {argv[0]}: {exc.strerror}\n".encode())
            os._exit(127)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    os.write(fd, f"pid {pid}\n".encode())
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        os.write(fd, f"signal {os.WTERMSIG(status)}\n".encode())
    else:
        os.write(fd, f"exit {os.WEXITSTATUS(status)}\n".encode())
    os.close(fd)


if __name__ == "__main__":
    main()
