/* Starts one Lean process for lean-solve so that it dies with lean-solve.
 *
 *   launch PARENT_PID GUARD_FD AS_LIMIT_BYTES CMD [ARGS...]
 *
 * Asks the kernel for SIGKILL when the parent dies (PR_SET_PDEATHSIG, kept across exec), exits
 * if the parent already died, tells lean-solve's guard its process group (GUARD_FD, -1 for
 * none) before anything can fork, caps the address space (0 for no cap), then execs CMD.
 * It exists so lean-solve can start Lean without a Python preexec_fn, which would force a
 * full fork of a parent that may hold a multi-GB model instead of vfork. Exit 127: could not
 * set up or exec (the reason is on stderr). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s PARENT_PID GUARD_FD AS_LIMIT_BYTES CMD [ARGS...]\n", argv[0]);
        return 127;
    }
    pid_t parent = (pid_t)atol(argv[1]);
    int guard = atoi(argv[2]);
    unsigned long long limit = strtoull(argv[3], NULL, 10);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        perror("lean-solve launcher: prctl");
        return 127;
    }
    if (getppid() != parent)
        return 127; /* lean-solve died before the death signal was armed */
    if (guard >= 0) {
        if (getpgid(0) == getpid()) {
            char line[32];
            int n = snprintf(line, sizeof line, "+%d\n", (int)getpid());
            signal(SIGPIPE, SIG_IGN); /* a dead guard: lean-solve tells its successor */
            if (write(guard, line, (size_t)n) != n) { /* nothing else to do: see above */ }
            signal(SIGPIPE, SIG_DFL);
        }
        close(guard);
    }
    if (limit) {
        struct rlimit cap = {limit, limit};
        if (setrlimit(RLIMIT_AS, &cap) != 0) {
            perror("lean-solve launcher: setrlimit");
            return 127;
        }
    }
    execvp(argv[4], argv + 4);
    perror(argv[4]);
    return 127;
}
