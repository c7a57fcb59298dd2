#define _POSIX_C_SOURCE 200809L
#include "base/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal, sigint_seen;

static void on_signal(int sig) {
    if (!stop_signal)
        stop_signal = sig;
    if (sig == SIGINT) {
        sigint_seen = 1;
        signal(SIGINT, SIG_DFL); /* the second Ctrl-C kills */
    }
}

void signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!sigint_seen) /* installing again must not re-arm a Ctrl-C that already came */
        sigaction(SIGINT, &sa, NULL);
    /* Unblocked in this thread too (threads started later inherit its mask): a launcher may start us with
     * a mask inherited from its own signal thread. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int signals_stop_requested(void) { return stop_signal; }
