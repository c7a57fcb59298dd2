#define _POSIX_C_SOURCE 200809L
#include "parallel/watchdog.h"

#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "parallel/coll.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t started = PTHREAD_ONCE_INIT;
static const char *guarded; /* NULL: disarmed */
static double last_progress;
static int world_rank;

static void *watch(void *unused) {
    (void)unused;
    for (;;) {
        sleep(1);
        pthread_mutex_lock(&lock);
        double idle = guarded ? mt_now() - last_progress : 0;
        if (guarded && idle > coll_timeout()) {
            fprintf(stderr,
                    "%s: rank %d: %s made no progress for %.0f s (MT_COMM_TIMEOUT): another rank or the file "
                    "system is stuck; ending the job\n",
                    mt_program(), world_rank, guarded, idle);
            fflush(stderr);
            _exit(MT_EXIT_INTERNAL);
        }
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void start(void) {
    coll_timeout(); /* read the setting here, not first in the thread */
    pthread_t t;
    CHECK(!pthread_create(&t, NULL, watch, NULL), "cannot start the watchdog thread");
    pthread_detach(t);
}

void watchdog_arm(const char *what) {
    pthread_once(&started, start);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    pthread_mutex_lock(&lock);
    guarded = what;
    last_progress = mt_now();
    pthread_mutex_unlock(&lock);
}

void watchdog_progress(void) {
    pthread_mutex_lock(&lock);
    last_progress = mt_now();
    pthread_mutex_unlock(&lock);
}

void watchdog_disarm(void) {
    pthread_mutex_lock(&lock);
    guarded = NULL;
    pthread_mutex_unlock(&lock);
}
