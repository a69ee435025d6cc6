/* The pod sandbox process for the test cluster: it holds the pod's namespaces open and does
 * nothing else. As PID 1 of a pod that shares its PID namespace it also reaps orphans. SIGTERM
 * or SIGINT ends it with status 0 (the kubelet stops sandboxes with SIGTERM).
 * Built with `gcc -static -Os` by e2e/src/oci.rs (pause_image). */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    int saved = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

int main(void) {
    struct sigaction sa = {0};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_term;
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return 1;
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        return 1;
    for (;;)
        pause();
}
