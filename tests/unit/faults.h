/* Local faults for the unit tests (faults.c): set these, run, clear. */
#ifndef REPDISK_FAULTS_H
#define REPDISK_FAULTS_H

#include <stdbool.h>

extern const char *fault_path;	/* files whose path starts with this ... */
extern bool fault_pwrite;	/* ... fail pwrite with EIO */
extern bool fault_sync;		/* ... fail fdatasync with EIO */
extern bool fault_range;	/* ... fail sync_file_range's wait with EIO */
extern int fault_strdup_in;	/* the Nth strdup from now fails; 0: none */

#endif
