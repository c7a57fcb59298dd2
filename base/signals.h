/* Stop requests (DESIGN 8): SIGUSR1, SIGTERM and SIGINT ask the trainer to finish the current step, write a
 * checkpoint and exit with MT_EXIT_STOPPED; a second SIGINT stops at once (the default action), without
 * touching `latest`.
 *
 * bin/train installs the handlers first thing in main(), before MPI_Init and config loading, so that a
 * signal arriving during start-up or resume (Slurm's warning signal, a preemption) is remembered instead of
 * killing the rank; the trainer honours it at its first step boundary. */
#ifndef MT_SIGNALS_H
#define MT_SIGNALS_H

/* Installs the handlers; safe to call again (after MPI_Init, in case the MPI library replaced one): a
 * request already received is kept, and a Ctrl-C already received stays at the default action. */
void signals_install(void);
/* The signal that asked for a stop, or 0. */
int signals_stop_requested(void);

#endif
