/* Stop requests (DESIGN 8): SIGUSR1, SIGTERM and SIGINT ask the trainer to finish the current step, write a
 * checkpoint and exit with MT_EXIT_STOPPED; a second SIGINT stops at once (the default action), without
 * touching `latest`. */
#ifndef MT_SIGNALS_H
#define MT_SIGNALS_H

void signals_install(void);
/* The signal that asked for a stop, or 0. */
int signals_stop_requested(void);

#endif
