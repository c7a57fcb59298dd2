/* A guard for the collectives that cannot be given a timeout: parallel HDF5 creates datasets, writes
 * attributes and closes files in collectives of its own, which block inside MPI until every rank has
 * joined, and a hung file system blocks any write. While armed, a thread ends the process when the guarded
 * work makes no progress for MT_COMM_TIMEOUT seconds (one line naming it, exit code 1; mpirun and srun then
 * end the other ranks), so a stuck rank or file system never hangs a job. */
#ifndef MT_WATCHDOG_H
#define MT_WATCHDOG_H

/* Starts guarding `what` (a string that outlives the guard), e.g. "the write of checkpoint step_8.h5". */
void watchdog_arm(const char *what);
/* The guarded work moved on: the timeout starts again. */
void watchdog_progress(void);
void watchdog_disarm(void);

#endif
